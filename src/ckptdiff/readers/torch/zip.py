"""The ``torch-zip`` reader: ``torch.save`` checkpoints in the zip format (torch >= 1.6).

The archive holds ``<root>/data.pkl`` (the pickled object, storages as persistent ids),
``<root>/data/<key>`` (one member per storage, raw bytes) and small records (``byteorder``,
``version``); ``<root>`` is ``archive`` or, in older files, the file's stem. The reader reads the
central directory, ``data.pkl``, ``byteorder`` and the records torch parses (``zip_records``)
only: each storage member is checked against what the tensors need by its declared size in the
central directory, never read.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable
from typing import IO, ClassVar, cast

from ckptdiff.errors import CkptdiffError, CorruptFileError, UnknownFormatError
from ckptdiff.manifest import Manifest
from ckptdiff.readers.base import CountingFile, Location, open_binary, open_counting
from ckptdiff.readers.pickle.records import StorageRecord
from ckptdiff.readers.pickle.unpickler import MAX_PICKLE_BYTES, LoadSession, load_pickle
from ckptdiff.readers.torch.manifest import build_manifest, check_tensor_bounds
from ckptdiff.readers.torch.zip_layout import TORCHSCRIPT, archive_kind
from ckptdiff.readers.torch.zip_records import check_format_records
from ckptdiff.readers.zip_safety import open_torch_archive, read_member

TORCH_EXTENSIONS = (".pth", ".pt", ".bin", ".ckpt")

_ZIP_MAGIC = b"PK\x03\x04"
_DATA_PKL = re.compile(r"([^/]+)/data\.pkl")
_LOCAL_HEADER_SIZE = 30


class TorchZipReader:
    """``torch.save`` zip checkpoints (``.pth .pt .bin .ckpt``)."""

    name: ClassVar[str] = "torch-zip"
    extensions: ClassVar[tuple[str, ...]] = TORCH_EXTENSIONS
    description: ClassVar[str] = "PyTorch checkpoint, torch.save zip format (torch >= 1.6)"
    requires: ClassVar[tuple[str, ...]] = ()
    extra: ClassVar[str | None] = None

    def sniff(self, head: bytes, path: Location) -> bool:
        """A zip whose central directory has a ``<root>/data.pkl`` member.

        torch writes ``data.pkl`` first, so a first local header naming it decides at once (and
        lets a truncated download, whose central directory is gone, reach the reader to be
        explained); otherwise the central directory is read. TorchScript archives, which also
        hold ``data.pkl``, are the TorchScript reader's (``zip_layout.archive_kind``).
        """
        if not head.startswith(_ZIP_MAGIC) or archive_kind(head, path) == TORCHSCRIPT:
            return False
        size = int.from_bytes(head[26:28], "little")
        first = head[_LOCAL_HEADER_SIZE:_LOCAL_HEADER_SIZE + size]
        if len(first) == size and _DATA_PKL.fullmatch(first.decode("utf-8", "replace")):
            return True
        try:
            with open_binary(path) as handle, zipfile.ZipFile(handle) as archive:
                return any(_DATA_PKL.fullmatch(name) for name in archive.namelist())
        except Exception:  # not a readable zip: not ours
            return False

    def read(self, path: Location, key: str | None = None) -> Manifest:
        """Read ``data.pkl`` into a manifest; check every storage member's declared size."""
        raw = open_counting(path)
        with raw:
            return read_archive(raw, path, key, self.name)


def read_archive(raw: CountingFile, path: Location, key: str | None,
                 fmt: str = TorchZipReader.name) -> Manifest:
    """The manifest of the ``torch.save`` archive open as ``raw``; ``path`` names it."""
    obj, session, storage_name, metadata = load_archive(raw, path)
    return build_manifest(path, fmt, obj, key, session, storage_name, metadata)


def load_archive(raw: CountingFile, path: Location) -> tuple[
        object, LoadSession, Callable[[StorageRecord], str], dict[str, object]]:
    """The object of the ``torch.save`` archive open as ``raw`` (a whole file, or the byte
    range of one that DCP stores an archive in), every record and storage checked as torch
    checks them: the object, its load session, storage names and format metadata."""
    archive = open_torch_archive(cast(IO[bytes], raw), raw.size, str(path))
    members = {info.filename: info for info in archive.infolist()}
    root = _archive_root(archive, path)
    data = _read_member(raw, members[f"{root}/data.pkl"], path)
    metadata: dict[str, object] = {}
    byteorder = members.get(f"{root}/byteorder")
    if byteorder is not None:
        metadata["byteorder"] = _byteorder(raw, byteorder, path)
    _check_torch_records(members, root, path)
    check_format_records(lambda info, limit: _read_member(raw, info, path, limit),
                         members, root, path)
    session = LoadSession(legacy=False)
    obj = load_pickle(data, session, str(path), f"{root}/data.pkl", weights_only=True)

    def storage_name(storage: StorageRecord) -> str:
        return f"{root}/data/{storage.root}"

    for storage in session.storages.values():
        _check_storage(members.get(storage_name(storage)), storage_name(storage),
                       storage.nbytes, raw.size, path)
    check_tensor_bounds(session, path, storage_name)
    metadata["bytes_read"] = raw.bytes_read
    return obj, session, storage_name, metadata


def _archive_root(archive: zipfile.ZipFile, path: Location) -> str:
    names = archive.namelist()
    roots = [m.group(1) for m in map(_DATA_PKL.fullmatch, names) if m]
    if not roots:
        raise UnknownFormatError(
            f"{path}: a zip archive without data.pkl is not a torch checkpoint")
    first = names[0].split("/", 1)[0]
    root = first if first in roots else roots[0]
    if f"{root}/constants.pkl" in names or any(n.startswith(f"{root}/code/") for n in names):
        raise UnknownFormatError(
            f"{path}: is a TorchScript archive (torch.jit.save), not a torch.save checkpoint; "
            "save the model's state_dict() with torch.save to compare it")
    return root


def _check_torch_records(members: dict[str, zipfile.ZipInfo], root: str,
                         path: Location) -> None:
    """Refuse what torch's archive reader refuses before it unpickles, from the central
    directory alone: a member outside the root folder, a compression method miniz cannot read,
    an encrypted member (miniz refuses each record it opens; ckptdiff cannot check it either)."""
    for name, info in members.items():
        if not name.startswith(f"{root}/"):
            raise CorruptFileError(f"{path}: zip entry {name!r} is outside the archive's root "
                                   f"folder {root}/, which torch refuses")
        if info.flag_bits & 0x01:
            raise CorruptFileError(f"{path}: zip entry {name!r} is encrypted, which torch "
                                   "cannot read")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise CorruptFileError(f"{path}: {name} uses zip compression method "
                                   f"{info.compress_type}, which torch cannot read")


def _read_member(raw: CountingFile, info: zipfile.ZipInfo, path: Location,
                 limit: int = MAX_PICKLE_BYTES) -> bytes:
    # Read here, not by zipfile: the local header is checked against the central directory.
    try:
        return read_member(cast(IO[bytes], raw), info, str(path), limit)
    except OSError as exc:
        raise CkptdiffError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _byteorder(raw: CountingFile, info: zipfile.ZipInfo, path: Location) -> str:
    text = _read_member(raw, info, path, limit=16).decode("ascii", "replace")
    if text not in ("little", "big"):
        raise CorruptFileError(f"{path}: {info.filename} says {text[:16]!r}, not little or big")
    return text


def _check_storage(info: zipfile.ZipInfo | None, name: str, needed: int, file_size: int,
                   path: Location) -> None:
    if info is None:
        raise CorruptFileError(
            f"{path}: storage {name} is missing from the archive: truncated or damaged file?")
    _check_extent(info, file_size, path)
    if info.file_size < needed:
        raise CorruptFileError(
            f"{path}: storage {name} holds {info.file_size:,} bytes but the checkpoint needs "
            f"{needed:,}: truncated or damaged file?")


def _check_extent(info: zipfile.ZipInfo, file_size: int, path: Location) -> None:
    # The central directory is not trusted: its member must fit inside the file.
    name_size = len(info.orig_filename.encode())
    end = info.header_offset + _LOCAL_HEADER_SIZE + name_size + info.compress_size
    if end > file_size:
        raise CorruptFileError(
            f"{path}: {info.filename} would end at byte {end:,}, past the end of the "
            f"{file_size:,}-byte file: truncated or damaged file?")
