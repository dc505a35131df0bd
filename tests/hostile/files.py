"""Hostile files that are not (only) malicious pickles: resource bombs, zip tricks, links out of
the checkpoint. Each :class:`Case` builds its file in a fresh folder and says what reading it
must give: a manifest (``error`` None) or that :class:`~ckptdiff.errors.CkptdiffError`
subclass with a message matching ``match``. HDF5, TensorFlow and safetensors cases are in
:mod:`tests.hostile.files_other`.
"""

from __future__ import annotations

import pickle
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.hostile import zips
from tests.hostile.asm import Asm
from tests.hostile.containers import STORAGES, tensor, write_zip

from ckptdiff.errors import CkptdiffError, CorruptFileError, UnsafeContentError


@dataclass(frozen=True)
class Case:
    """A hostile input: how to build it, and what reading it must give."""

    name: str
    build: Callable[[Path], Path]
    error: type[CkptdiffError] | None
    match: str = ""
    needs: str | None = None  # an optional module the builder needs (h5py)


def state(*extra: bytes, protocol: int = 2) -> bytes:
    """A valid state dict ``{"w": tensor}`` whose dict also gets ``extra`` (key, value opcodes)
    set on it, as a complete pickle."""
    asm = Asm(protocol)
    asm.op(b"}").text("w")
    tensor(asm, "0", (2, 3), legacy=False)
    asm.op(b"s")
    for item in extra:
        asm.op(item).op(b"s")
    return asm.complete()


Data = bytes | Callable[[], bytes]  # costly contents are made only when a case is built


def _bytes(data: Data) -> bytes:
    return data if isinstance(data, bytes) else data()


def zipped(data_pkl: Data) -> Callable[[Path], Path]:
    return lambda folder: write_zip(folder / "model.pt", _bytes(data_pkl))


def raw(name: str, data: Data) -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        (folder / name).write_bytes(_bytes(data))
        return folder / name
    return build


def _text(value: str) -> bytes:
    asm = Asm(2)
    asm.text(value)
    return bytes(asm.out)


def _shared(depth: int, width: int) -> bytes:
    """A dict holding one tensor, shared ``width`` ways at each of ``depth`` levels."""
    asm = Asm(2)
    asm.op(b"}").text("t")
    tensor(asm, "0", (2, 3), legacy=False)
    asm.op(b"s")
    slot = asm.put()
    for _ in range(depth):
        asm.op(b"0}(")
        for n in range(width):
            asm.text(f"k{n}").get(slot)
        slot = (asm.op(b"u"), asm.put())[1]
    return asm.op(b"0}").text("model").get(slot).op(b"s").complete()


def _long_keys(length: int, copies: int) -> bytes:
    """``{"m<i>": {<length-char key>: tensor}}`` for ``copies`` keys, one inner dict shared."""
    asm = Asm(2)
    asm.op(b"}").text("x" * length)
    tensor(asm, "0", (2, 3), legacy=False)
    slot = (asm.op(b"s"), asm.put())[1]
    asm.op(b"0}(")
    for n in range(copies):
        asm.text(f"m{n}").get(slot)
    return asm.op(b"u").complete()


def _colliding_ints(count: int) -> bytes:
    modulus = 2**61 - 1
    keys = b"".join(b"\x8a" + bytes([len(k)]) + k + b"K\x00" for k in (
        (n * modulus).to_bytes(11, "little", signed=True) for n in range(1, count + 1)))
    return b"\x80\x02}(" + keys + b"u."


def _nested(first: bytes, opener: bytes, closer: bytes, levels: int) -> bytes:
    return b"\x80\x02" + first + opener * levels + closer * levels + b"."


def _huge_storage() -> bytes:
    asm = Asm(2)
    asm.op(b"}").text("w")
    tensor(asm, "0", (2**31, 2**31), legacy=False)
    return asm.op(b"s").complete()


def _many_unsafe(count: int) -> bytes:
    asm = Asm(2)
    asm.op(b"(")
    for n in range(count):
        asm.glob(f"evil{n}", "run")
    return asm.op(b"l").complete()


PICKLE_CASES = [
    Case("deep-tuples", zipped(lambda: b"\x80\x02)" + b"\x85" * 200_000 + b"."), CorruptFileError,
         "nest more than"),
    Case("deep-lists", zipped(lambda: _nested(b"]", b"]", b"a", 50_000)), CorruptFileError,
         "nest more than"),
    Case("deep-dicts", zipped(lambda: _nested(b"}", b"X\x01\x00\x00\x00k}", b"s", 50_000)),
         CorruptFileError, "nest more than"),
    Case("self-containing", zipped(b"\x80\x02}q\x00X\x01\x00\x00\x00ah\x00s."),
         CorruptFileError, "nest more than"),
    Case("shared-2-ways-40-deep", zipped(lambda: _shared(40, 2)), CorruptFileError,
         "shared many times"),
    Case("shared-4000-ways", zipped(lambda: _shared(2, 4000)), CorruptFileError,
         "shared many times"),
    Case("one-long-key", zipped(state(_text("x" * 70_000) + b"}" + _text("y") + b"Ns")), None),
    Case("long-key-path", zipped(lambda: _long_keys(70_000, 1)), CorruptFileError, "longer than"),
    Case("long-keys-shared", zipped(lambda: _long_keys(60_000, 3_000)), CorruptFileError, "add up"),
    Case("hash-flood", zipped(lambda: _colliding_ints(20_000)), CorruptFileError, "hash-flooding"),
    Case("huge-int-key", zipped(state(b"\x8b" + struct.pack("<i", 3000) + b"\x01" * 3000
                                      + b"K\x01")), None),
    Case("surrogate-key", zipped(state(b"X\x05\x00\x00\x00a\xed\xa0\x80b" + b"\x88")), None),
    Case("memo-index-4G", zipped(b"\x80\x02}r\xff\xff\xff\xff."), CorruptFileError,
         "memo index"),
    Case("binbytes8-claims-4EiB", zipped(b"\x80\x04\x8e" + struct.pack("<Q", 2**62) + b"ab."),
         CorruptFileError, "truncated|ends inside"),
    Case("binunicode8-claims-4EiB", zipped(b"\x80\x04\x8d" + struct.pack("<Q", 2**62) + b"."),
         CorruptFileError, "truncated|ends inside"),
    Case("frame-claims-4EiB", zipped(b"\x80\x04\x95" + struct.pack("<Q", 2**62) + b"}."),
         CorruptFileError, ""),
    Case("long4-claims-2GiB", zipped(b"\x80\x02\x8b\xff\xff\xff\x7f\x01."), CorruptFileError,
         "ends inside"),
    Case("long-text-5000-digits", zipped(b"\x80\x02L" + b"9" * 5000 + b"L\n."),
         CorruptFileError, ""),
    Case("300-unsafe-globals", zipped(lambda: _many_unsafe(300)), UnsafeContentError,
         "and 288 more"),
    Case("storage-claims-2**62", zipped(_huge_storage()), CorruptFileError, "needs"),
    Case("empty-data-pkl", zipped(b""), CorruptFileError, "ends inside"),
    Case("not-a-pickle", zipped(b"\x00" * 64), CorruptFileError, "not a valid pickle"),
    Case("stack-global-of-ints", zipped(b"\x80\x04K\x01K\x02\x93."), CorruptFileError,
         "STACK_GLOBAL"),
]


def _torch_zip(members: list[tuple[str, bytes]], method: int = zipfile.ZIP_STORED) -> bytes:
    return zips.archive(members, method)


def _good_members(data_pkl: bytes | None = None) -> list[tuple[str, bytes]]:
    members = [("archive/data.pkl", data_pkl or state()), ("archive/byteorder", b"little"),
               ("archive/version", b"3\n")]  # torch refuses an archive without it
    return members + [(f"archive/data/{k}", bytes(n)) for k, n in STORAGES.items()]


def _with(extra: list[tuple[str, bytes]]) -> bytes:
    return _torch_zip(_good_members() + extra)


GOOD_ZIP = _torch_zip(_good_members())
ZIP_CASES = [
    Case("zip-valid", raw("ok.pt", GOOD_ZIP), None),
    Case("zip-duplicate-data-pkl", raw("dup.pt", _torch_zip(
        [("archive/data.pkl", _many_unsafe(1)), *_good_members()])), CorruptFileError,
        "names that zip readers can confuse"),
    Case("zip-case-twin", raw("case.pt", _with([("archive/DATA.pkl", b"")])), CorruptFileError,
         "confuse"),
    Case("zip-dotdot", raw("dotdot.pt", _with([("archive/../../../etc/x", b"")])),
         CorruptFileError, r"'\.\.'"),
    Case("zip-absolute", raw("abs.pt", _with([("/etc/passwd", b"")])), CorruptFileError,
         "absolute"),
    Case("zip-drive", raw("drive.pt", _with([("C:/x", b"")])), CorruptFileError, "absolute"),
    Case("zip-backslash", raw("bs.pt", _with([("archive\\..\\x", b"")])), CorruptFileError,
         "backslash"),
    Case("zip-overlapping-entries", raw("overlap.pt", zips.patch_central(
        GOOD_ZIP, "archive/data/1", "offset", zips.central_value(GOOD_ZIP, "archive/data/0",
                                                                 "offset"))),
        CorruptFileError, "would end at byte"),
    Case("zip-entry-past-end", raw("past.pt", zips.patch_central(
        GOOD_ZIP, "archive/data/1", "csize", 2**31)), CorruptFileError, "would end|sizes differ"),
    Case("zip-local-name-differs", raw("name.pt", zips.rename_local(
        GOOD_ZIP, "archive/data.pkl", "archive/evil.pkl")), CorruptFileError, "local zip header"),
    Case("zip-local-method-differs", raw("method.pt", zips.patch_local(
        GOOD_ZIP, "archive/data.pkl", "method", 8)), CorruptFileError, "compression method"),
    Case("zip-local-size-differs", raw("size.pt", zips.patch_local(
        GOOD_ZIP, "archive/data.pkl", "csize", 7)), CorruptFileError, "sizes or CRC"),
    Case("zip-crc-differs", raw("crc.pt", zips.patch_central(zips.patch_local(
        GOOD_ZIP, "archive/data.pkl", "crc", 1), "archive/data.pkl", "crc", 1)),
        CorruptFileError, "CRC"),
    Case("zip-encrypted-flag", raw("enc.pt", zips.patch_local(zips.patch_central(
        GOOD_ZIP, "archive/data.pkl", "flags", 1), "archive/data.pkl", "flags", 1)),
        CorruptFileError, "is encrypted"),
    Case("zip-bzip2-member", raw("bz.pt", zips.patch_local(zips.patch_central(
        GOOD_ZIP, "archive/data.pkl", "method", 12), "archive/data.pkl", "method", 12)),
        CorruptFileError, "method 12"),
    Case("zip-bomb-data-pkl", raw("bomb.pt", lambda: zips.bomb("archive/data.pkl", 20_000_000)),
         CorruptFileError, "zip bomb"),
    Case("zip-deflated-ok", raw("deflated.pt", _torch_zip(_good_members(), zipfile.ZIP_DEFLATED)),
         None),
    Case("zip-truncated-central", raw("cut.pt", GOOD_ZIP[:-30]), CorruptFileError, ""),
    Case("zip-eocd-only", raw("eocd.pt", b"PK\x05\x06" + bytes(18)), CkptdiffError, ""),
    Case("zip-20000-entries", raw("many.pt", lambda: _with([(f"archive/x/{n}", b"") for n in
                                                    range(20_000)])), None),
    Case("zip-pickle-prepended", raw("poly.pt", _many_unsafe(1) + GOOD_ZIP), CkptdiffError, ""),
    Case("zip-junk-appended", raw("junk.pt", GOOD_ZIP + b"\x00" * 1000), None),
    Case("legacy-plain-pickle", raw("plain.pt", pickle.dumps({"a": 1}, protocol=2)),
         CkptdiffError, "torch-zip or torch-legacy"),
]
