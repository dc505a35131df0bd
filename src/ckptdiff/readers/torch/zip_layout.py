"""Which kind of torch zip archive a file is: a ``torch.save`` checkpoint or a TorchScript
archive (``torch.jit.save``); shared by both readers' sniffers so they never claim the same file.

Both hold ``<root>/data.pkl``. A TorchScript archive also holds ``<root>/code/`` (the compiled
classes) and ``<root>/constants.pkl``, and its ``data.pkl`` pickles the root module, an instance
of a ``__torch__.*`` class, so its first opcode after PROTO is ``GLOBAL '__torch__ …'``. torch
writes ``data.pkl`` first for ``torch.save`` (and for a TorchScript module without tensors): then
the first local header decides, from the head alone (which also lets a truncated download, whose
central directory is gone, reach its reader to be explained); otherwise the central directory is
read.
"""

from __future__ import annotations

import re
import zipfile
from typing import Literal

from ckptdiff.readers.base import Location, open_binary

ArchiveKind = Literal["torch.save", "torchscript"]
TORCH_SAVE: ArchiveKind = "torch.save"
TORCHSCRIPT: ArchiveKind = "torchscript"

_ZIP_MAGIC = b"PK\x03\x04"
_DATA_PKL = re.compile(r"([^/]+)/data\.pkl")
_LOCAL_HEADER_SIZE = 30
_SCRIPT_PICKLE = re.compile(rb"\x80[\x00-\x05]c__torch__[.\n]")


def archive_kind(head: bytes, path: Location) -> ArchiveKind | None:
    """``torch.save``, ``torchscript``, or ``None`` for anything else (not a torch zip)."""
    if not head.startswith(_ZIP_MAGIC):
        return None
    size = int.from_bytes(head[26:28], "little")
    extra = int.from_bytes(head[28:30], "little")
    first = head[_LOCAL_HEADER_SIZE:_LOCAL_HEADER_SIZE + size]
    if len(first) == size and _DATA_PKL.fullmatch(first.decode("utf-8", "replace")):
        start = _LOCAL_HEADER_SIZE + size + extra
        return TORCHSCRIPT if _SCRIPT_PICKLE.match(head, start) else TORCH_SAVE
    try:
        with open_binary(path) as handle, zipfile.ZipFile(handle) as archive:
            names = archive.namelist()
    except Exception:  # not a readable zip: not a torch archive
        return None
    roots = {m.group(1) for m in map(_DATA_PKL.fullmatch, names) if m}
    if not roots:
        return None
    scripted = any(n.split("/", 1)[0] in roots and (n.endswith("/constants.pkl") or "/code/" in n)
                   for n in names)
    return TORCHSCRIPT if scripted else TORCH_SAVE
