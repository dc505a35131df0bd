"""What torch refuses before and while it unpickles a zip checkpoint, ckptdiff refuses, and
nothing more: the ``version`` and ``.storage_alignment`` records, encrypted members, a tensor's
metadata (conj/neg bits) and its backward hooks. torch 2.13's ``torch.load`` is the oracle."""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

import pytest
from tests.differential.torch_edits import zip_records
from tests.hostile import zips

from ckptdiff.errors import CorruptFileError
from ckptdiff.readers import read
from ckptdiff.readers.torch.zip_records import stoull_as_int64

torch = pytest.importorskip("torch", reason="torch.load is the oracle")

VERSIONS = [b"", b"3", b"1", b"0", b"10", b"11", b"abc", b"-1", b"+3", b" 3", b"\n3\n",
            b"3abc", b"0x3", b"-0", b"\x003", b"3\x00x", b"\t\v\f\r3", b"0003", b"1_0",
            b"18446744073709551615", b"18446744073709551616", b"-18446744073709551615",
            b"99999999999999999999999", b"\xd9\xa3"]
ALIGNMENTS = [b"", b"64", b"abc", b"-1", b"0", b" 64\n", b"1_0", b"+5", b"0x10", b"64.0",
              b"\xd9\xa3", b"\x1c64", b"little\n"]


def _saved(obj: object) -> list[tuple[str, bytes]]:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return zip_records(buffer.getvalue())


def _torch_accepts(path: Path) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.load(path, weights_only=True)
    except Exception:
        return False
    return True


def _ckptdiff_accepts(path: Path) -> bool:
    try:
        read(path)
    except CorruptFileError:
        return False
    return True


def _with_record(tmp_path: Path, name: str, value: bytes | None,
                 replace: tuple[str, ...] = ()) -> Path:
    records = [(n, p) for n, p in _saved({"w": torch.ones(2)}) if n not in (name, *replace)]
    if value is not None:
        records.append((name, value))
    path = tmp_path / "model.pt"
    path.write_bytes(zips.archive([(f"archive/{n}", p) for n, p in records]))
    return path


@pytest.mark.parametrize("value", [None, *VERSIONS], ids=repr)
def test_version_record_as_torch_parses_it(value: bytes | None, tmp_path: Path) -> None:
    path = _with_record(tmp_path, "version", value)
    assert _ckptdiff_accepts(path) == _torch_accepts(path)


def test_data_version_record_comes_first(tmp_path: Path) -> None:
    good = _with_record(tmp_path, ".data/version", b"3", replace=("version",))
    assert _ckptdiff_accepts(good) and _torch_accepts(good)
    bad = _with_record(tmp_path, ".data/version", b"abc")  # beside a good ``version``
    assert not _torch_accepts(bad)
    with pytest.raises(CorruptFileError, match="cannot parse as a file-format version"):
        read(bad)


def test_missing_version_is_refused_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(CorruptFileError, match="no version record") as caught:
        read(_with_record(tmp_path, "version", None))
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("value", [None, *ALIGNMENTS], ids=repr)
def test_storage_alignment_as_torch_parses_it(value: bytes | None, tmp_path: Path) -> None:
    path = _with_record(tmp_path, ".storage_alignment", value)
    assert _ckptdiff_accepts(path) == _torch_accepts(path)


def test_stoull_wraps_negative_values_and_compares_signed() -> None:
    assert stoull_as_int64(b"-18446744073709551615") == 1
    assert stoull_as_int64(b"18446744073709551615") == -1
    assert stoull_as_int64(b"18446744073709551616") is None
    assert stoull_as_int64(b"  +7z") == 7 and stoull_as_int64(b"+") is None


@pytest.mark.parametrize("member", ["data.pkl", "version", "byteorder", "data/0",
                                    ".data/serialization_id", ".storage_alignment"])
def test_an_encrypted_member_is_refused_as_torch_refuses_it(member: str, tmp_path: Path) -> None:
    buffer = io.BytesIO()
    torch.save({"w": torch.ones(2)}, buffer)
    path = tmp_path / "model.pt"
    path.write_bytes(zips.patch_central(buffer.getvalue(), f"archive/{member}", "flags", 1))
    assert not _torch_accepts(path)
    with pytest.raises(CorruptFileError, match="encrypted"):
        read(path)


class _Rebuilt:
    """Pickles as ``_rebuild_tensor_v2`` of ``tensor`` with chosen hooks and metadata."""

    def __init__(self, tensor: Any, hooks: object, metadata: object) -> None:
        self.tensor, self.hooks, self.metadata = tensor, hooks, metadata

    def __reduce_ex__(self, protocol: object) -> tuple[Any, ...]:
        func, args = self.tensor.__reduce_ex__(2)
        return func, (*args[:5], self.hooks, self.metadata)


HOOKS_AND_METADATA = [
    (1, None), ("x", {}), ([], 0), ((), ""), (None, {"neg": True}), ({}, {"conj": True}),
    ({}, {"neg": 0}), ({}, {"neg": "a"}), ({}, {1: True}), ({}, {b"neg": True}),
    ({}, {"neg": None}), ({}, [1]), ({}, {"x": 2.5}), ({}, {"neg": []}),
]


@pytest.mark.parametrize(("hooks", "metadata"), HOOKS_AND_METADATA, ids=repr)
@pytest.mark.parametrize("dtype", ["float32", "complex64"])
def test_hooks_and_metadata_as_torch_applies_them(hooks: object, metadata: object, dtype: str,
                                                   tmp_path: Path) -> None:
    tensor = torch.ones(2, dtype=getattr(torch, dtype))
    path = tmp_path / "model.pt"
    torch.save({"t": _Rebuilt(tensor, hooks, metadata)}, path)
    assert _ckptdiff_accepts(path) == _torch_accepts(path)
