"""What a DCP ``Metadata`` record says about tensors: global shapes, chunks, storage files, and
the nested state dict the flattened keys came from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any

from ckptdiff.errors import CorruptFileError
from ckptdiff.readers.base import Location
from ckptdiff.readers.pickle.dcp_records import (
    IndexRecord,
    MetadataRecord,
    StorageInfoRecord,
    TensorMetaRecord,
)
from ckptdiff.readers.pickle.records import DtypeRecord
from ckptdiff.readers.safety import resolve_inside
from ckptdiff.readers.torch.dcp_archives import check_archives
from ckptdiff.sources import progress

StorageKey = tuple[str, tuple[int, ...] | None]
# a storage entry DCP's load reads, and the chunk (sizes, dtype) it reads it into, if a tensor's
Read = tuple[StorageKey, tuple[tuple[int, ...], str] | None]


class _NonTensor:
    """A value DCP stored as pickled bytes (``step``, param groups): never read, never shown."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<non-tensor entry>"


NON_TENSOR = _NonTensor()


@dataclass(frozen=True)
class Chunk:
    """One saved piece of a tensor: where it sits in the global tensor, and in which file."""

    offsets: tuple[int, ...]
    sizes: tuple[int, ...]
    file: str | None


@dataclass(frozen=True, eq=False)
class DcpTensor:
    """One tensor of the checkpoint: global shape, torch dtype name, chunks."""

    shape: tuple[int, ...]
    dtype: str
    chunks: tuple[Chunk, ...]

    @property
    def storage(self) -> str | None:
        """The storage file holding the whole tensor, when exactly one does."""
        files = {c.file for c in self.chunks}
        return files.pop() if len(files) == 1 else None

    def chunk_json(self) -> list[dict[str, Any]]:
        """The chunks as JSON: offsets, sizes, file."""
        return [{"offsets": list(c.offsets), "sizes": list(c.sizes), "file": c.file}
                for c in self.chunks]


def tensors_of(root: MetadataRecord, storage: dict[StorageKey, StorageInfoRecord],
               display: str) -> tuple[dict[str, DcpTensor], list[str]]:
    """Every tensor by flattened key (chunks checked against the global shape), and the keys of
    non-tensor entries."""
    entries: dict[str, Any] = root.get("state_dict_metadata")  # type: ignore[assignment]
    files = {key: str(info.get("relative_path")) for key, info in storage.items()}
    tensors: dict[str, DcpTensor] = {}
    others: list[str] = []
    for key, meta in entries.items():
        if not isinstance(meta, TensorMetaRecord):
            others.append(key)
            continue
        shape, properties = meta.get("size"), meta.get("properties")
        if not isinstance(shape, tuple) or properties is None:
            raise CorruptFileError(f"{display}: {key!r} has no size or properties")
        dtype = properties.get("dtype")  # type: ignore[attr-defined]
        assert isinstance(dtype, DtypeRecord)
        chunks = []
        for chunk in meta.get("chunks") or []:  # type: ignore[attr-defined]
            offsets, sizes = chunk.get("offsets"), chunk.get("sizes")
            if not (isinstance(offsets, tuple) and isinstance(sizes, tuple)
                    and len(offsets) == len(sizes) == len(shape)
                    and all(o + s <= d for o, s, d in zip(offsets, sizes, shape, strict=True))):
                raise CorruptFileError(f"{display}: a chunk of {key!r} lies outside its "
                                       f"global shape {list(shape)}")
            chunks.append(Chunk(offsets, sizes, files.get((key, offsets))))
        tensors[key] = DcpTensor(shape, dtype.name, tuple(chunks))
    return tensors, others


def storage_entries(root: MetadataRecord, display: str) -> dict[StorageKey, StorageInfoRecord]:
    """``storage_data`` keyed as DCP's reads look entries up: ``MetadataIndex`` compares its
    key and chunk offsets (the ``index`` hint is not compared). DCP asserts it is there."""
    storage = root.get("storage_data")
    if not isinstance(storage, dict):
        raise CorruptFileError(f"{display}: .metadata has no storage_data (DCP's load asserts it)")
    found: dict[StorageKey, StorageInfoRecord] = {}
    for where, info in storage.items():
        assert isinstance(where, IndexRecord) and isinstance(info, StorageInfoRecord)
        offset = where.get("offset")
        found[(str(where.get("fqn")), offset if isinstance(offset, tuple) else None)] = info
    return found


def check_storage(entries: dict[StorageKey, StorageInfoRecord], reads: list[Read],
                  folder: Location, display: str) -> tuple[list[str], int]:
    """Check the storage files: every name inside the checkpoint, every file there and long
    enough, and each entry DCP's load reads (``reads``) present, a byte range of its own, and
    the ``torch.save`` archive of what it is read into (:mod:`.dcp_archives`). The names, and
    the bytes read."""
    needed: dict[str, int] = {}
    for info in entries.values():
        name = str(info.get("relative_path"))
        posix = PurePosixPath(name)
        if (not name or posix.is_absolute() or PureWindowsPath(name).drive
                or ".." in posix.parts or "\\" in name or "\x00" in name):
            raise CorruptFileError(f"{display}: refused storage file name {name[:80]!r}: it "
                                   "must be a name inside the checkpoint directory")
        needed[name] = max(needed.get(name, 0), sum(_span(info) or (0, 0)))
    for number, (name, end) in enumerate(sorted(needed.items())):
        progress.note_step(number, len(needed), name)
        file = folder / name
        if file.is_symlink():  # stat-ed only, but nothing outside the checkpoint is looked at
            resolve_inside(folder, file, display, f"storage file {name}")
        size = file.stat().st_size if file.is_file() else None
        if size is None:
            raise CorruptFileError(f"{display}: storage file {name} named in .metadata is "
                                   "missing: incomplete copy?")
        if size < end:
            raise CorruptFileError(f"{display}: storage file {name} is {size:,} bytes but "
                                   f".metadata needs {end:,}: truncated copy?")
    ranges = _read_ranges(entries, reads, display)
    return sorted(needed), check_archives(ranges, folder, display)


def _span(info: StorageInfoRecord) -> tuple[int, int] | None:
    """(offset, length) of an entry; None when the pickle left one out."""
    offset, length = info.get("offset"), info.get("length")
    return (offset, length) if isinstance(offset, int) and isinstance(length, int) else None


def _read_ranges(entries: dict[StorageKey, StorageInfoRecord], reads: list[Read],
                 display: str) -> dict[str, list[tuple[int, int, str, Any]]]:
    by_file: dict[str, list[tuple[int, int, str, Any]]] = {}
    spans: dict[str, dict[StorageKey, tuple[int, int]]] = {}
    for key, chunk in dict.fromkeys(reads):
        info = entries.get(key)
        if info is None:
            where = "" if key[1] is None else f" at offsets {list(key[1])}"
            raise CorruptFileError(f"{display}: .metadata has no storage_data entry for "
                                   f"{key[0][:80]!r}{where}, which DCP's load reads")
        span = _span(info)
        if span is None:
            raise CorruptFileError(f"{display}: the storage_data entry of {key[0][:80]!r} has no "
                                   "offset or length")
        name = str(info.get("relative_path"))
        by_file.setdefault(name, []).append((span[0], span[0] + span[1], key[0], chunk))
        spans.setdefault(name, {})[key] = (span[0], span[0] + span[1])
    for name, ranges in spans.items():
        ordered = sorted((start, end, key[0]) for key, (start, end) in ranges.items())
        for (_, end, first), (start, _, second) in zip(ordered, ordered[1:], strict=False):
            if start < end:
                raise CorruptFileError(
                    f"{display}: {first[:60]!r} and {second[:60]!r} are read from overlapping "
                    f"bytes of {name}: one of them would load the other's data (ambiguous)")
    return by_file
