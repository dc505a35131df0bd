"""ONNX, TorchScript and ``.pt2`` files diffed against the live torch model they came from and
against a safetensors file of it, with the ONNX exporter's conventions in the notes."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import ckptdiff
from ckptdiff.diffing.exported import ANONYMOUS_NOTE, MISSING_NOTE

torch = pytest.importorskip("torch", reason="the live models are torch modules")

TESTDATA = Path(__file__).resolve().parent.parent / "testdata" / "readers"


def _fixture_module(family: str, attribute: str) -> object:
    sys.path.insert(0, str(TESTDATA / family))
    try:
        import make_fixtures

        return getattr(make_fixtures, attribute)
    finally:
        sys.path.pop(0)
        sys.modules.pop("make_fixtures", None)


def test_dynamo_onnx_against_its_model_and_a_safetensors_copy(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    model = _fixture_module("onnx", "small")()
    report = ckptdiff.diff(TESTDATA / "onnx" / "dynamo.onnx", model)
    by_kind = {(f.kind, f.key): f for f in report.findings}
    assert report.matched == 5  # conv.*, fc.*, scale kept their module names
    assert by_kind[("missing", "bn.weight")].note == MISSING_NOTE
    assert by_kind[("unexpected", "val_10")].note == ANONYMOUS_NOTE
    assert [u.source_key for u in report.unpaired] == ["val_10"]
    copy = tmp_path / "model.safetensors"
    save_file(model.state_dict(), copy)
    against_file = ckptdiff.diff(TESTDATA / "onnx" / "dynamo.onnx", copy)
    assert {(f.kind, f.key) for f in against_file.findings} == {
        (f.kind, f.key) for f in report.findings}


def test_an_onnx_matmul_weight_names_its_transposed_candidate(tmp_path: Path) -> None:
    class Projection(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.proj = torch.nn.Linear(4, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.proj(x)

    path = tmp_path / "proj.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Projection().eval(), (torch.randn(2, 5, 4),), path, dynamo=False)
    report = ckptdiff.diff(path, Projection())
    assert not report.compatible and not report.suggestions
    (unpaired,) = report.unpaired
    assert unpaired.source_key.startswith("onnx::MatMul_")
    assert unpaired.candidates == ("proj.weight",)
    assert "transposed" in unpaired.reason


def test_torchscript_and_export_archives_against_their_models(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    scripted = _fixture_module("torchscript", "Scripted")()
    report = ckptdiff.diff(TESTDATA / "torchscript" / "scripted.pt", scripted)
    # A scripted module keeps its non-persistent buffer; strict loading rejects that copy.
    assert [(f.kind, f.key, f.severity) for f in report.findings] == [
        ("unexpected", "offset", "info")]
    exported = _fixture_module("torch_export", "Module")()
    report = ckptdiff.diff(TESTDATA / "torch_export" / "module.pt2", exported)
    assert report.compatible and report.matched == 10 and not report.findings
    copy = tmp_path / "module.safetensors"
    save_file(exported.state_dict(), copy)
    assert ckptdiff.diff(TESTDATA / "torch_export" / "module.pt2", copy).compatible


GRAPH_FIXTURES = [("onnx", "onnx/legacy.onnx"), ("torchscript", "torchscript/tree.pt"),
                  ("torch-export", "torch_export/tied.pt2")]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ckptdiff", *args], capture_output=True,
                          text=True)


def test_formats_lists_the_graph_readers() -> None:
    listed = _cli("formats").stdout
    for name, extension in (("onnx", ".onnx"), ("torchscript", ".ptl"),
                            ("torch-export", ".pt2")):
        assert any(line.split()[:1] == [name] and extension in line
                   for line in listed.splitlines()), name


@pytest.mark.parametrize(("fmt", "name"), GRAPH_FIXTURES)
def test_inspect_tree_and_json(fmt: str, name: str, manifest_schema: object) -> None:
    import jsonschema

    path = str(TESTDATA / name)
    document = json.loads(_cli("inspect", path, "--format", "json").stdout)
    jsonschema.validate(document, manifest_schema)
    assert document["format"] == fmt
    tree = _cli("inspect", path, "--tree")
    assert tree.returncode == 0 and tree.stderr == ""
    first = document["tensors"][0]["key"].split(".")[0]
    assert f"{fmt}  {len(document['tensors'])} tensors" in tree.stdout and first in tree.stdout
