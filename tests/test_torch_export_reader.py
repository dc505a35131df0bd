"""The ``.pt2`` reader against ``torch.export.load`` as the oracle (testdata/readers/torch_export).

``torch.export.load(path).state_dict`` must be exactly the manifest (keys in order, shapes,
dtypes, strides, ``requires_grad`` of parameters), ``.constants`` the listed constants, and the
weight files are never read.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

import ckptdiff.readers as registry
from ckptdiff.errors import CorruptFileError, UsageError

torch = pytest.importorskip("torch", reason="torch.export.load is the oracle")

FIXTURES = Path(__file__).resolve().parent.parent / "testdata" / "readers" / "torch_export"
DTYPES = {torch.float32: "float32", torch.float64: "float64", torch.int64: "int64",
          torch.float16: "float16", torch.bfloat16: "bfloat16", torch.int8: "int8"}


def assert_matches_export_load(path: Path, key: str | None = None) -> None:
    manifest = registry.read(path, key)
    assert manifest.format == "torch-export"
    if key is None:
        program = torch.export.load(str(path))
    else:
        from torch.export.pt2_archive._package import load_pt2

        program = load_pt2(str(path)).exported_programs[key]
    state = program.state_dict
    assert [t.key for t in manifest.tensors] == list(state)
    for info in manifest.tensors:
        tensor = state[info.key]
        assert (info.shape, info.dtype, info.stride) == (
            tuple(tensor.shape), DTYPES[tensor.dtype], tuple(tensor.stride())), info.key
        assert info.kind == ("parameter" if isinstance(tensor, torch.nn.Parameter) else "buffer")
        if info.kind == "parameter":
            assert info.trainable == tensor.requires_grad
    assert [c["key"] for c in manifest.metadata["constants"]] == list(program.constants)


@pytest.mark.parametrize("name", ["module.pt2", "tied.pt2"])
def test_fixtures_match_export_load(name: str) -> None:
    assert_matches_export_load(FIXTURES / name)


def test_tied_weights_share_one_file() -> None:
    manifest = registry.read(FIXTURES / "tied.pt2")
    assert {t.key: t.aliases for t in manifest.tensors} == {
        "emb.weight": ("head.weight",), "head.weight": ("emb.weight",)}
    assert manifest.tensors[0].storage == manifest.tensors[1].storage


def test_views_and_dtypes_of_a_fresh_export(tmp_path: Path) -> None:
    class Mixed(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = torch.nn.Linear(4, 3).to(torch.bfloat16)
            self.register_buffer("steps", torch.arange(6, dtype=torch.int64))
            self.frozen = torch.nn.Parameter(torch.ones(2, dtype=torch.float64),
                                             requires_grad=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.lin(x.to(torch.bfloat16)).float().sum() + self.steps.sum() + \
                self.frozen.sum()

    path = tmp_path / "mixed.pt2"
    torch.export.save(torch.export.export(Mixed(), (torch.randn(2, 4),)), path)
    assert_matches_export_load(path)


def test_several_models_need_a_key(tmp_path: Path) -> None:
    from torch.export.pt2_archive._package import package_pt2

    first = torch.export.export(torch.nn.Linear(2, 3), (torch.randn(1, 2),))
    second = torch.export.export(torch.nn.Linear(3, 1), (torch.randn(1, 3),))
    path = tmp_path / "two.pt2"
    package_pt2(str(path), exported_programs={"encoder": first, "head": second})
    with pytest.raises(UsageError, match="holds models encoder, head"):
        registry.read(path)
    assert [t.shape for t in registry.read(path, "head").tensors] == [(1, 3), (1,)]
    assert_matches_export_load(path, "encoder")


def _rewritten(source: Path, target: Path, edit: dict[str, bytes | None]) -> None:
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            suffix = info.filename.split("/", 1)[1]
            if suffix in edit:
                if edit[suffix] is not None:
                    new.writestr(info.filename, edit[suffix])
            else:
                new.writestr(info.filename, old.read(info))


def test_damaged_configs_and_missing_weights_are_clear_errors(tmp_path: Path) -> None:
    source = FIXTURES / "module.pt2"
    config_name = "data/weights/model_weights_config.json"
    with zipfile.ZipFile(source) as archive:
        root = archive.namelist()[0].split("/", 1)[0]
        config = json.loads(archive.read(f"{root}/{config_name}"))
    missing = tmp_path / "missing.pt2"
    _rewritten(source, missing, {"data/weights/weight_0": None})
    with pytest.raises(CorruptFileError, match="weight_0 of 'conv.weight' is missing"):
        registry.read(missing)
    config["config"]["conv.weight"]["tensor_meta"]["sizes"][0] = {"as_expr": "s0"}
    symbolic = tmp_path / "symbolic.pt2"
    _rewritten(source, symbolic, {config_name: json.dumps(config).encode()})
    with pytest.raises(CorruptFileError, match="not a non-negative integer"):
        registry.read(symbolic)
    short = tmp_path / "short.pt2"
    _rewritten(source, short, {"data/weights/weight_0": b"\0" * 8})
    with pytest.raises(CorruptFileError, match="needs 72 bytes"):
        registry.read(short)


def test_pickled_weights_are_described_and_flagged(tmp_path: Path) -> None:
    source = FIXTURES / "module.pt2"
    config_name = "data/weights/model_weights_config.json"
    with zipfile.ZipFile(source) as archive:
        root = archive.namelist()[0].split("/", 1)[0]
        config = json.loads(archive.read(f"{root}/{config_name}"))
    config["config"]["fc.weight"]["use_pickle"] = True  # as torch writes tensor subclasses
    path = tmp_path / "pickled.pt2"
    _rewritten(source, path, {config_name: json.dumps(config).encode()})
    manifest = registry.read(path)
    assert manifest.metadata["pickled_weights"] == ["fc.weight"]
    assert "weights_only=False" in manifest.metadata["warnings"][0]
    assert manifest.by_key["fc.weight"].shape == (3, 2)
