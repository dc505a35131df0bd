"""The TorchScript reader against ``torch.jit.load`` as the oracle, and its safety boundary.

Fixtures: testdata/readers/torchscript (committed) and archives scripted or traced here. The
manifest must list exactly ``torch.jit.load(path).state_dict()``: same keys in the same order,
shapes, dtypes, and ``requires_grad`` of the parameters; nothing of the archive may be imported
or run.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import ckptdiff.readers as registry
from ckptdiff.errors import CkptdiffError, CorruptFileError, UnsafeContentError
from ckptdiff.readers.torch.torchscript import TorchScriptReader
from ckptdiff.readers.torch.zip import TorchZipReader

torch = pytest.importorskip("torch", reason="torch.jit.load is the oracle")

FIXTURES = Path(__file__).resolve().parent.parent / "testdata" / "readers" / "torchscript"
DTYPES = {torch.float32: "float32", torch.float64: "float64", torch.int64: "int64",
          torch.float16: "float16", torch.bfloat16: "bfloat16"}


def assert_matches_jit_load(path: Path) -> None:
    manifest = registry.read(path)
    assert manifest.format == "torchscript"
    loaded = torch.jit.load(str(path), map_location="cpu")
    state = loaded.state_dict()
    assert [t.key for t in manifest.tensors] == list(state)
    for info in manifest.tensors:
        assert info.shape == tuple(state[info.key].shape), info.key
        assert info.dtype == DTYPES[state[info.key].dtype], info.key
    params = dict(loaded.named_parameters(remove_duplicate=False))  # tied: both keys
    assert {t.key for t in manifest.tensors if t.kind == "parameter"} == set(params)
    for info in manifest.tensors:
        if info.kind == "parameter":
            assert info.trainable == params[info.key].requires_grad, info.key


@pytest.mark.parametrize("name", ["scripted.pt", "tree.pt", "no_tensors.pt"])
def test_fixtures_match_jit_load(name: str) -> None:
    assert_matches_jit_load(FIXTURES / name)


def test_traced_lite_and_half_precision_modules(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv1d(2, 4, 3), torch.nn.BatchNorm1d(4),
                                torch.nn.Flatten(), torch.nn.Linear(8, 2)).eval()
    traced = tmp_path / "traced.pt"
    torch.jit.save(torch.jit.trace(model, torch.randn(1, 2, 4)), traced)
    assert_matches_jit_load(traced)
    lite = tmp_path / "lite.ptl"  # the mobile format adds bytecode.pkl, never read
    torch.jit.script(model)._save_for_lite_interpreter(str(lite))
    assert_matches_jit_load(lite)
    half = tmp_path / "half.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(3, 2).to(torch.bfloat16)), half)
    assert_matches_jit_load(half)


def test_tied_weights_are_aliases_and_plain_tensors_are_reported() -> None:
    manifest = registry.read(FIXTURES / "tree.pt")
    by_key = {t.key: t for t in manifest.tensors}
    assert by_key["emb.weight"].aliases == ("head.weight",)
    assert manifest.metadata["tensor_attributes"] == ["plain"]
    assert "blocks.1.bias" not in by_key  # bias=None is not in state_dict()


def test_only_the_torchscript_reader_claims_an_archive() -> None:
    for name in ("scripted.pt", "no_tensors.pt"):
        path = FIXTURES / name
        head = path.read_bytes()[:4096]
        assert TorchScriptReader().sniff(head, path)
        assert not TorchZipReader().sniff(head, path)


def _archive(path: Path, data_pkl: bytes) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("m/data.pkl", data_pkl)
        archive.writestr("m/code/__torch__.py", "class M(Module):\n  __parameters__ = []\n"
                                                "  __buffers__ = []\n  training : bool\n")
        archive.writestr("m/constants.pkl", pickle.dumps((), protocol=2))
        archive.writestr("m/version", "3\n")


def _module_pickle(attributes: bytes) -> bytes:
    # PROTO 2, GLOBAL '__torch__ M', EMPTY_TUPLE, NEWOBJ, <attributes dict>, BUILD, STOP
    return b"\x80\x02c__torch__\nM\n)\x81" + attributes + b"b."


def test_unsafe_globals_beside_scripted_classes_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "hostile.pt"
    # {'x': os.system('true')}: the scan refuses before anything is unpickled.
    _archive(path, _module_pickle(b"}X\x01\x00\x00\x00xcos\nsystem\nX\x04\x00\x00\x00true"
                                  b"\x85Rs"))
    with pytest.raises(UnsafeContentError, match="os.system"):
        registry.read(path)


def test_scripted_class_names_are_never_imported(tmp_path: Path) -> None:
    path = tmp_path / "benign.pt"
    _archive(path, _module_pickle(b"}X\x08\x00\x00\x00training\x89s"))
    script = ("import sys, ckptdiff.readers as r\n"
              f"m = r.read({str(path)!r})\n"
              "print(m.format, len(m.tensors), any(k.startswith('__torch__') for k in "
              "sys.modules), 'torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True)
    assert out.stdout.split() == ["torchscript", "0", "False", "False"]


def test_missing_code_and_custom_state_are_clear_errors(tmp_path: Path) -> None:
    path = tmp_path / "nocode.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("m/data.pkl", _module_pickle(b"}X\x08\x00\x00\x00training\x89s"))
        archive.writestr("m/constants.pkl", pickle.dumps((), protocol=2))
        archive.writestr("m/version", "3\n")
    with pytest.raises(CorruptFileError, match=r"no code for __torch__\.M"):
        registry.read(path)
    custom = tmp_path / "custom.pt"
    _archive(custom, _module_pickle(b"K\x01\x85"))  # BUILD with a tuple: __setstate__ state
    with pytest.raises(CkptdiffError, match="custom state"):
        registry.read(custom)
    with pytest.raises(CkptdiffError, match="no containers"):
        registry.read(FIXTURES / "scripted.pt", "state_dict")


def test_unsafe_report_reads_scripted_classes_as_data(tmp_path: Path) -> None:
    from ckptdiff.readers.pickle.unsafe_report import unsafe_report

    report = unsafe_report(FIXTURES / "scripted.pt")
    statuses = {use.name: use.status for pickle_ in report.pickles for use in pickle_.globals}
    assert statuses["__torch__.Scripted"] == "data"
    assert statuses["torch.jit._pickle.build_intlist"] == "data"
    assert report.unsafe_globals == []
    hostile = tmp_path / "hostile.pt"
    _archive(hostile, _module_pickle(b"}X\x01\x00\x00\x00xcos\nsystem\nX\x04\x00\x00\x00true"
                                     b"\x85Rs"))
    assert unsafe_report(hostile).unsafe_globals == ["os.system"]
