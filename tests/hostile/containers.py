"""Puts a hostile pickle into every torch container form ckptdiff reads.

- ``zip``: a ``torch.save`` zip whose ``data.pkl`` is the hostile pickle;
- ``zip-nested``: a valid state dict with tensors and storages, the hostile value nested three
  containers deep beside it;
- ``legacy``: the five pickles of the legacy format, the hostile value nested in the main pickle;
- ``legacy-sysinfo``: the hostile value in the ``sys_info`` pickle, before the main one;
- ``dcp``: a ``torch.distributed.checkpoint`` directory whose ``.metadata`` is the pickle.
"""

from __future__ import annotations

import pickle
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

from tests.hostile.asm import Asm
from tests.hostile.pickles import Hostile

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
SYS_INFO = {"protocol_version": 1001, "little_endian": True,
            "type_sizes": {"short": 2, "int": 4, "long": 4}}


def tensor(asm: Asm, key: str, shape: tuple[int, ...], legacy: bool) -> None:
    """Push ``_rebuild_tensor_v2`` of a contiguous float32 tensor on storage ``key``."""
    numel = 1
    for dim in shape:
        numel *= dim
    stride = [1] * len(shape)
    for i in range(len(shape) - 2, -1, -1):
        stride[i] = stride[i + 1] * shape[i + 1]
    asm.glob("torch._utils", "_rebuild_tensor_v2").mark()
    asm.mark().text("storage").glob("torch", "FloatStorage").text(key).text("cpu").value(numel)
    if legacy:
        asm.op(b"N")
    asm.op(b"tQ").value(0).tuple_(list(shape)).tuple_(stride).op(b"\x89")
    asm.glob("collections", "OrderedDict").op(b")R").op(b"tR")


def state_with(hostile: Hostile, legacy: bool) -> bytes:
    """``{"state_dict": {w, b}, "extra": {"a": [{"b": <hostile>}]}, "epoch": 1}``."""
    asm = Asm(hostile.protocol)
    asm.op(b"}").text("state_dict").op(b"}")
    asm.text("w")
    tensor(asm, "0", (2, 3), legacy)
    asm.op(b"s").text("b")
    tensor(asm, "1", (2,), legacy)
    asm.op(b"s").op(b"s")
    asm.text("extra").op(b"}").text("a").op(b"(}").text("b").op(hostile.fragment)
    asm.op(b"sl").op(b"s").op(b"s").text("epoch").value(1).op(b"s")
    return asm.complete()


STORAGES = {"0": 24, "1": 8}


def write_zip(path: Path, data_pkl: bytes) -> Path:
    """A torch zip: ``archive/data.pkl``, ``byteorder``, ``version`` and both storages."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", data_pkl)
        archive.writestr("archive/byteorder", "little")
        for key, size in STORAGES.items():
            archive.writestr(f"archive/data/{key}", bytes(size))
        archive.writestr("archive/version", "3\n")
    return path


def write_legacy(path: Path, main: bytes, sys_info: bytes | None = None) -> Path:
    """The five legacy pickles, then each storage as a count and its bytes."""
    parts = [pickle.dumps(LEGACY_MAGIC, protocol=2), pickle.dumps(1001, protocol=2),
             sys_info or pickle.dumps(SYS_INFO, protocol=2), main,
             pickle.dumps(sorted(STORAGES), protocol=2)]
    for key in sorted(STORAGES):
        parts.append(struct.pack("<q", STORAGES[key] // 4) + bytes(STORAGES[key]))
    path.write_bytes(b"".join(parts))
    return path


def write_dcp(folder: Path, metadata: bytes) -> Path:
    """A DCP directory: ``.metadata`` and one (empty) storage file."""
    folder.mkdir()
    (folder / ".metadata").write_bytes(metadata)
    (folder / "__0_0.distcp").write_bytes(b"")
    return folder


FORMS: dict[str, Callable[[Hostile, Path], Path]] = {
    "zip": lambda h, p: write_zip(p.with_suffix(".pt"), h.whole()),
    "zip-nested": lambda h, p: write_zip(p.with_suffix(".pth"), state_with(h, legacy=False)),
    "legacy": lambda h, p: write_legacy(p.with_suffix(".pt"), state_with(h, legacy=True)),
    "legacy-sysinfo": lambda h, p: write_legacy(
        p.with_suffix(".bin"), state_with(_benign(h), legacy=True), h.whole()),
    "dcp": lambda h, p: write_dcp(p.with_suffix(".dcp"), h.whole()),
}


def _benign(hostile: Hostile) -> Hostile:
    empty = Asm(hostile.protocol)
    empty.op(b"N")
    return Hostile("benign", bytes(empty.out), frozenset(), hostile.protocol, hostile.payload)
