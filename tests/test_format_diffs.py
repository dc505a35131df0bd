"""Issue 17's done-when, format by format: one small torch model written as ONNX, TorchScript,
``.pt2``, ``.npz`` and ``.npy`` with the real tools, each diffed against the live model and
against a safetensors file of the same model (every key matched), and against a model whose
head was resized (the head's keys reported as shape errors, on both kinds of target). GGUF has
the same pair of tests in ``test_gguf_names.py``; inspect's tree, JSON and HTML views of all six
are checked at the end."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

import ckptdiff

torch = pytest.importorskip("torch", reason="the live models are torch modules")
np = pytest.importorskip("numpy")

KEYS = {"conv.weight", "conv.bias", "norm.weight", "norm.bias", "norm.running_mean",
        "norm.running_var", "norm.num_batches_tracked", "head.weight", "head.bias"}
TESTDATA = Path(__file__).resolve().parent.parent / "testdata" / "readers"


class Small(torch.nn.Module):  # type: ignore[misc]
    """A conv, a batch norm (buffers, an int64 counter) and a linear head of ``classes``."""

    def __init__(self, classes: int = 3) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3)
        self.norm = torch.nn.BatchNorm2d(4)
        self.head = torch.nn.Linear(4, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(self.conv(x)).mean(dim=(2, 3)))


def _example() -> torch.Tensor:
    return torch.randn(2, 1, 6, 6)


def _onnx(model: torch.nn.Module, path: Path) -> None:
    # Training mode keeps the batch norm a BatchNormalization node (eval folds it into the
    # conv); a 2-D input makes the head a Gemm that keeps its parameter names.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.train(), (_example(),), path, dynamo=False,
                          training=torch.onnx.TrainingMode.TRAINING, do_constant_folding=False)


def _torchscript(model: torch.nn.Module, path: Path) -> None:
    torch.jit.script(model).save(str(path))


def _pt2(model: torch.nn.Module, path: Path) -> None:
    torch.export.save(torch.export.export(model.eval(), (_example(),)), str(path))


def _npz(model: torch.nn.Module, path: Path) -> None:
    np.savez(path, **{key: value.numpy() for key, value in model.state_dict().items()})


WRITERS: dict[str, Callable[[torch.nn.Module, Path], None]] = {
    "model.onnx": _onnx, "model.pt": _torchscript, "model.pt2": _pt2, "model.npz": _npz}
# The ONNX exporter writes no num_batches_tracked (inference never reads it): an info finding.
NOT_EXPORTED = {"model.onnx": {("missing", "norm.num_batches_tracked", "info")}}
FORMATS = {"model.onnx": "onnx", "model.pt": "torchscript", "model.pt2": "torch-export",
           "model.npz": "numpy-npz"}


def _written(name: str, tmp_path: Path) -> Path:
    torch.manual_seed(0)
    path = tmp_path / name
    WRITERS[name](Small(), path)
    return path


def _safetensors_of(model: torch.nn.Module, path: Path) -> Path:
    from safetensors.torch import save_file

    save_file(model.state_dict(), str(path))
    return path


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_every_key_matches_the_live_model_and_its_safetensors_copy(name: str,
                                                                   tmp_path: Path) -> None:
    path = _written(name, tmp_path)
    manifest = ckptdiff.read(path)
    absent = NOT_EXPORTED.get(name, set())
    assert manifest.format == FORMATS[name]
    assert set(manifest.keys()) == KEYS - {key for _, key, _ in absent}
    for target in (Small(), _safetensors_of(Small(), tmp_path / "copy.safetensors")):
        report = ckptdiff.diff(path, target)
        assert report.compatible, [(f.kind, f.key) for f in report.findings]
        assert {(f.kind, f.key, f.severity) for f in report.findings} == absent
        assert report.matched == len(KEYS) - len(absent)


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_a_resized_head_is_reported_on_both_targets(name: str, tmp_path: Path) -> None:
    path = _written(name, tmp_path)
    resized = Small(classes=5)
    for target in (resized, _safetensors_of(resized, tmp_path / "resized.safetensors")):
        report = ckptdiff.diff(path, target)
        assert not report.compatible
        absent = NOT_EXPORTED.get(name, set())
        assert {(f.kind, f.key, f.severity) for f in report.findings} == {
            ("shape", "head.weight", "error"), ("shape", "head.bias", "error"), *absent}
        assert report.matched == len(KEYS) - 2 - len(absent)


def test_an_npz_missing_a_key_names_it(tmp_path: Path) -> None:
    state = {k: v.numpy() for k, v in Small().state_dict().items() if k != "norm.running_var"}
    np.savez(tmp_path / "partial.npz", **state)
    for target in (Small(), _safetensors_of(Small(), tmp_path / "copy.safetensors")):
        report = ckptdiff.diff(tmp_path / "partial.npz", target)
        assert [(f.kind, f.key) for f in report.findings] == [("missing", "norm.running_var")]
        assert not report.compatible


def test_an_npy_of_one_parameter_is_keyed_by_its_file_name(tmp_path: Path) -> None:
    layer = torch.nn.Linear(4, 3, bias=False)
    np.save(tmp_path / "weight.npy", layer.weight.detach().numpy())
    for target in (layer, _safetensors_of(layer, tmp_path / "layer.safetensors")):
        report = ckptdiff.diff(tmp_path / "weight.npy", target)
        assert report.compatible and report.matched == 1 and not report.findings
    wider = torch.nn.Linear(5, 3, bias=False)
    for target in (wider, _safetensors_of(wider, tmp_path / "wider.safetensors")):
        report = ckptdiff.diff(tmp_path / "weight.npy", target)
        assert [(f.kind, f.key) for f in report.findings] == [("shape", "weight")]
        assert not report.compatible


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ckptdiff", *args], capture_output=True,
                          text=True)


SIX = {"gguf": TESTDATA / "gguf" / "tiny_llama.gguf", "onnx": TESTDATA / "onnx" / "legacy.onnx",
       "torchscript": TESTDATA / "torchscript" / "tree.pt",
       "torch-export": TESTDATA / "torch_export" / "tied.pt2",
       "numpy-npy": TESTDATA / "numpy" / "weights.npy",
       "numpy-npz": TESTDATA / "numpy" / "arrays.npz"}


def test_formats_lists_all_six() -> None:
    rows = {line.split()[0]: line for line in _cli("formats").stdout.splitlines()[2:]
            if line.split()}
    for name in SIX:
        assert name in rows and "yes" in rows[name], name
    readme = (TESTDATA.parent.parent / "README.md").read_text()
    table = readme[readme.index("## What it reads"):readme.index("## Performance")]
    rows_of_table = [line for line in table.splitlines() if line.startswith("| `")]
    for name in SIX:
        assert any(f"`{name}`" in line.split(" | ")[0] for line in rows_of_table), name


@pytest.mark.parametrize("fmt", sorted(SIX))
def test_inspect_tree_json_and_html(fmt: str, manifest_schema: object) -> None:
    import jsonschema

    path = str(SIX[fmt])
    document = json.loads(_cli("inspect", path, "--format", "json").stdout)
    jsonschema.validate(document, manifest_schema)
    assert document["format"] == fmt
    tree = _cli("inspect", path, "--tree")
    assert tree.returncode == 0 and tree.stderr == ""
    assert f"{fmt}  {len(document['tensors'])} tensor" in tree.stdout
    page = _cli("inspect", path, "--format", "html")
    assert page.returncode == 0 and page.stdout.startswith("<!DOCTYPE html>")
    first = document["tensors"][0]["key"].split(".")[0]
    assert first in page.stdout
