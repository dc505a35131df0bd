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
from ckptdiff.sources import progress


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


def _storage_index(root: MetadataRecord) -> dict[tuple[str, tuple[int, ...] | None], str]:
    storage = root.get("storage_data")
    if not isinstance(storage, dict):
        return {}
    index: dict[tuple[str, tuple[int, ...] | None], str] = {}
    for where, info in storage.items():
        assert isinstance(where, IndexRecord) and isinstance(info, StorageInfoRecord)
        offset = where.get("offset")
        index[(str(where.get("fqn")), offset if isinstance(offset, tuple) else None)] = str(
            info.get("relative_path"))
    return index


def tensors_of(root: MetadataRecord, display: str) -> tuple[dict[str, DcpTensor], list[str]]:
    """Every tensor by flattened key (chunks checked against the global shape), and the keys of
    non-tensor entries."""
    entries: dict[str, Any] = root.get("state_dict_metadata")  # type: ignore[assignment]
    files = _storage_index(root)
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


def check_storage(root: MetadataRecord, folder: Location, display: str) -> list[str]:
    """Stat every storage file: it must exist and hold each entry's byte range."""
    storage = root.get("storage_data")
    needed: dict[str, int] = {}
    for info in storage.values() if isinstance(storage, dict) else []:
        name = str(info.get("relative_path"))
        posix = PurePosixPath(name)
        if (not name or posix.is_absolute() or PureWindowsPath(name).drive
                or ".." in posix.parts or "\\" in name or "\x00" in name):
            raise CorruptFileError(f"{display}: refused storage file name {name[:80]!r}: it "
                                   "must be a name inside the checkpoint directory")
        end = int(info.get("offset") or 0) + int(info.get("length") or 0)
        needed[name] = max(needed.get(name, 0), end)
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
    return sorted(needed)


def nest(root: MetadataRecord, tensors: dict[str, DcpTensor], others: list[str]) -> object:
    """The state dict DCP flattened, rebuilt from ``planner_data`` (key -> path of the original
    nesting); flat when the planner recorded none. Lists come back as lists."""
    paths = root.get("planner_data")
    order: dict[str, Any] = root.get("state_dict_metadata")  # type: ignore[assignment]
    unread = set(others)
    values: dict[str, object] = {k: NON_TENSOR if k in unread else tensors[k] for k in order}
    if not isinstance(paths, dict) or set(paths) != set(values) or not all(
            isinstance(p, tuple) and p and all(isinstance(s, (str, int)) for s in p)
            for p in paths.values()):
        return values
    tree: dict[Any, Any] = {}
    for key, value in values.items():
        node = tree
        *parents, last = paths[key]
        for step in parents:
            child = node.setdefault(step, {})
            if not isinstance(child, dict):
                return values  # a path runs through a leaf: not a nesting we can rebuild
            node = child
        if last in node:
            return values
        node[last] = value
    return _lists(tree)


def _lists(node: object) -> object:
    if not isinstance(node, dict):
        return node
    items = {k: _lists(v) for k, v in node.items()}
    if items and all(type(k) is int for k in items) and sorted(items) == list(range(len(items))):
        return [items[i] for i in range(len(items))]
    return items
