"""Hostile and broken files: resource bombs, zip tricks, links out of the checkpoint, Git LFS
pointers and empty files each give their one-line error (or a manifest), within seconds."""

from __future__ import annotations

import importlib.util
import json
import pickle
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from tests.hostile.asm import Asm
from tests.hostile.containers import write_zip
from tests.hostile.files import PICKLE_CASES, ZIP_CASES, Case, state
from tests.hostile.files_other import LFS_CASES, OTHER_CASES

import ckptdiff.readers as registry
from ckptdiff.errors import CkptdiffError, CorruptFileError, UnsafeContentError
from ckptdiff.readers import zip_safety
from ckptdiff.readers.pickle import scanner as pickle_scanner
from ckptdiff.readers.pickle.unpickler import LoadSession, load_pickle
from ckptdiff.readers.safety import MAX_WIDE_INTS

CASES = PICKLE_CASES + ZIP_CASES + OTHER_CASES + LFS_CASES


def outcome(path: Path) -> object:
    """Read ``path``: a manifest that can be written out, or a one-line CkptdiffError."""
    try:
        manifest = registry.read(path)
    except CkptdiffError as exc:
        message = str(exc)
        assert message.startswith(str(path)) and "\n" not in message, message
        assert len(message) < len(str(path)) + 1000, message
        return exc
    manifest.to_json().encode("utf-8")
    return manifest


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_file(case: Case, tmp_path: Path, manifest_schema: object) -> None:
    if case.needs and importlib.util.find_spec(case.needs) is None:
        pytest.skip(f"needs {case.needs}")
    path = case.build(tmp_path)
    start = time.perf_counter()
    result = outcome(path)
    assert time.perf_counter() - start < 10
    if case.error is None:
        import jsonschema

        assert not isinstance(result, CkptdiffError), result
        jsonschema.validate(json.loads(result.to_json()), manifest_schema)  # type: ignore[attr-defined]
    else:
        assert isinstance(result, case.error), result
        assert re.search(case.match, str(result)), str(result)
        assert result.exit_code == (3 if isinstance(result, UnsafeContentError) else 2)


def test_the_set_is_broad() -> None:
    assert len(CASES) >= 80
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("name", ["lfs-torch-file", "lfs-tf-index", "empty-file",
                                  "zip-bomb-data-pkl", "300-unsafe-globals",
                                  "safetensors-truncated-data", "tf-index-symlink-outside"])
def test_the_command_line_gives_one_line_and_no_traceback(name: str, tmp_path: Path) -> None:
    case = next(c for c in CASES if c.name == name)
    path = case.build(tmp_path)
    result = subprocess.run([sys.executable, "-m", "ckptdiff", "inspect", str(path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == (3 if case.error is UnsafeContentError else 2)
    assert result.stdout == "" and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"ckptdiff: error: {path}") and "Traceback" not in result.stderr


def test_truncated_downloads_say_so(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    header = json.dumps({"w": {"dtype": "F32", "shape": [1024, 256],
                               "data_offsets": [0, 1_048_576]}}).encode()
    full = len(header).to_bytes(8, "little") + header + bytes(1_048_576)
    path.write_bytes(full[:1_048_576])
    with pytest.raises(CorruptFileError) as caught:
        registry.read(path)
    assert str(caught.value) == (f"{path}: file ends at byte 1,048,576 but the header says "
                                 f"{len(full):,}: truncated download?")


# --- caps, with small limits patched in --------------------------------------------------------

def test_opcode_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pickle_scanner, "MAX_PICKLE_OPCODES", 1000)
    with pytest.raises(CorruptFileError, match="refused data.pkl: it runs more than 1,000 op"):
        load_pickle(b"\x80\x02" + b"N0" * 600 + b"}.", LoadSession(legacy=False), "f", "data.pkl")
    assert load_pickle(b"\x80\x02" + b"N0" * 400 + b"}.", LoadSession(legacy=False), "f",
                       "data.pkl") == {}


def test_wide_integer_cap() -> None:
    def pickled(count: int) -> bytes:
        return b"\x80\x02(" + b"".join(b"\x8a\x09" + (2**64 + n).to_bytes(9, "little")
                                       for n in range(count)) + b"l."

    assert len(load_pickle(pickled(MAX_WIDE_INTS), LoadSession(False), "f", "d")) == MAX_WIDE_INTS
    with pytest.raises(CorruptFileError, match="hash-flooding"):
        load_pickle(pickled(MAX_WIDE_INTS + 1), LoadSession(False), "f", "d")


def test_zip_entry_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_zip(tmp_path / "many.pt", state())
    monkeypatch.setattr(zip_safety, "MAX_ZIP_ENTRIES", 4)
    with pytest.raises(CorruptFileError, match="has 5 entries, more than ckptdiff's limit of 4"):
        registry.read(path)


def test_short_strings_of_protocol_4_read(tmp_path: Path) -> None:
    # A length byte of 128-255 (SHORT_BINUNICODE, SHORT_BINBYTES) is unsigned.
    data = pickle.dumps({"k" * 200: b"v" * 200, "n": "é" * 100}, protocol=4)
    assert load_pickle(data, LoadSession(legacy=False), "f", "d") == {
        "k" * 200: b"v" * 200, "n": "é" * 100}
    torch = pytest.importorskip("torch")
    path = tmp_path / "p4.pt"
    torch.save({"layer." * 30 + "weight": torch.zeros(2)}, path, pickle_protocol=4)
    assert registry.read(path).keys() == ["layer." * 30 + "weight"]


def test_deflated_members_are_read_without_zipfile(tmp_path: Path) -> None:
    path = tmp_path / "deflated.pt"
    stored = write_zip(tmp_path / "stored.pt", state())
    with zipfile.ZipFile(stored) as source, zipfile.ZipFile(path, "w",
                                                            zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            target.writestr(info.filename, source.read(info))
    assert registry.read(path).tensors == registry.read(stored).tensors


def test_stack_global_names_from_every_string_opcode_are_found() -> None:
    for style in ("STRING", "UNICODE", "SHORT_BINSTRING", "BINSTRING", "BINUNICODE",
                  "SHORT_BINUNICODE", "BINUNICODE8"):
        asm = Asm(2)
        asm.stack_global("subprocess", "Popen", style)
        asm.op(b")R")
        with pytest.raises(UnsafeContentError) as caught:
            load_pickle(asm.complete(), LoadSession(legacy=False), "f", "d")
        assert caught.value.globals == ("subprocess.Popen",), style
