"""The ``safetensors-sharded`` reader: a ``*.safetensors.index.json`` and the shards it names.

Reads the index (``{"metadata": {...}, "weight_map": {key: shard}}``), then each shard's header.
The index and the shards must agree exactly: a key the weight_map puts in a shard that does not
hold it, or a tensor in a shard that the weight_map does not list, is a ``CorruptFileError``
(the checkpoint was edited or partly written; a diff of either half would mislead).

Shard names must be relative names inside the index's folder: absolute names and ``..`` are
refused, and so is a symlink resolving outside that folder, except into the ``blobs/`` folder
next to ``snapshots/`` in the Hugging Face cache layout (``…/snapshots/<rev>/x.safetensors`` →
``…/blobs/<sha>``), where every shard is such a symlink.
"""

from __future__ import annotations

from pathlib import PurePosixPath, PureWindowsPath
from typing import Any, ClassVar

from ckptdiff import progress
from ckptdiff.errors import CkptdiffError, CorruptFileError
from ckptdiff.manifest import Manifest, TensorInfo
from ckptdiff.readers.base import CountingFile, Location, is_within
from ckptdiff.readers.safetensors import (
    FILE_SUFFIX,
    INDEX_SUFFIX,
    list_directory,
    refuse_key,
    tensor_infos,
)
from ckptdiff.readers.safetensors_header import read_header
from ckptdiff.readers.safetensors_json import json_type, load_strict_json, quote

MAX_INDEX_BYTES = 100_000_000  # a 1M-tensor index is ~100 bytes a key: far below


class ShardedSafetensorsReader:
    """A sharded safetensors checkpoint: its index file, or a folder holding one index."""

    name: ClassVar[str] = "safetensors-sharded"
    extensions: ClassVar[tuple[str, ...]] = (INDEX_SUFFIX,)
    description: ClassVar[str] = "sharded safetensors (index + shard headers)"
    requires: ClassVar[tuple[str, ...]] = ()
    extra: ClassVar[str | None] = None

    def sniff(self, head: bytes, path: Location) -> bool:
        """A JSON object with a ``weight_map`` naming ``.safetensors`` shards; or a folder with
        an index, or with several ``.safetensors`` files (which ``read`` then explains)."""
        if not head:
            if not path.is_dir():
                return False
            try:
                listing = list_directory(path)
            except CkptdiffError:
                return False
            return bool(listing.indexes) or len(listing.files) > 1
        if not head.lstrip().startswith(b"{") or b'"weight_map"' not in head:
            return False
        if b'"ckptdiff.manifest/' in head:
            return False
        return path.name.lower().endswith(INDEX_SUFFIX) or b'.safetensors"' in head

    def read(self, path: Location, key: str | None = None) -> Manifest:
        """Read the index and every shard's header; tensors in shard then offset order."""
        refuse_key(path, key)
        try:
            return self._read(path)
        except OSError as exc:  # e.g. a folder we may not list, an I/O error mid-read
            raise CkptdiffError(f"{path}: cannot read: {exc.strerror or exc}") from None
        except RuntimeError as exc:  # a symlink loop met while resolving a shard's path
            raise CkptdiffError(f"{path}: cannot read: {exc}") from None

    def _read(self, path: Location) -> Manifest:
        index_path = _index_path(path)
        index_metadata, weight_map, bytes_read = _load_index(index_path)
        folder = index_path.parent
        tensors: list[TensorInfo] = []
        shards: list[dict[str, Any]] = []
        found: dict[str, str] = {}
        shard_names = sorted(set(weight_map.values()))
        for number, shard in enumerate(shard_names):
            progress.note_step(number, len(shard_names), shard)
            header = read_header(_shard_path(index_path, folder, shard))
            bytes_read += header.bytes_read
            for entry in header.entries:
                if entry.key in found:
                    raise CorruptFileError(
                        f"{index_path}: tensor {quote(entry.key)} is stored in two shards, "
                        f"{quote(found[entry.key])} and {quote(shard)}"
                    )
                found[entry.key] = shard
            tensors.extend(tensor_infos(header, shard))
            shards.append({"file": shard, "tensors": len(header.entries),
                           "safetensors": header.metadata})
        _check_agreement(index_path, weight_map, found)
        return Manifest(
            path=str(path),
            format=self.name,
            tensors=tuple(tensors),
            metadata={"index": index_metadata, "shards": shards, "bytes_read": bytes_read},
        )


def _index_path(path: Location) -> Location:
    if not path.is_dir():
        return path
    listing = list_directory(path)
    if len(listing.indexes) == 1:
        return path / listing.indexes[0]
    if listing.indexes:
        raise CkptdiffError(
            f"{path}: holds {len(listing.indexes)} index files ({', '.join(listing.indexes)}): "
            "pass the one to read"
        )
    raise CkptdiffError(
        f"{path}: holds {len(listing.files)} {FILE_SUFFIX} files but no *{INDEX_SUFFIX} "
        "that says how they fit together: pass one file, or restore the index"
    )


def _load_index(path: Location) -> tuple[dict[str, Any], dict[str, str], int]:
    label = str(path)
    try:
        with CountingFile(path) as file:
            if file.size > MAX_INDEX_BYTES:
                raise CorruptFileError(
                    f"{label}: {file.size:,} bytes is too large for a safetensors index "
                    f"(limit {MAX_INDEX_BYTES:,})"
                )
            raw = file.read(file.size)
            bytes_read = file.bytes_read
    except OSError as exc:
        raise CkptdiffError(f"{label}: cannot read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorruptFileError(f"{label}: index is not valid UTF-8 (byte {exc.start:,})") from None
    document = load_strict_json(text, f"{label}: index")
    if not isinstance(document, dict):
        raise CorruptFileError(f"{label}: index is a JSON {json_type(document)}, not an object")
    metadata = document.get("metadata")
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise CorruptFileError(f"{label}: index metadata is a JSON {json_type(metadata)}, "
                               "not an object")
    weight_map = document.get("weight_map")
    if not isinstance(weight_map, dict):
        raise CorruptFileError(
            f"{label}: index has no weight_map object (found a JSON {json_type(weight_map)})"
        )
    for key, shard in weight_map.items():
        if not isinstance(shard, str):
            raise CorruptFileError(f"{label}: weight_map maps {quote(key)} to a JSON "
                                   f"{json_type(shard)}, not a shard file name")
    return metadata, weight_map, bytes_read


def _shard_path(index_path: Location, folder: Location, shard: str) -> Location:
    posix = PurePosixPath(shard.replace("\\", "/"))
    if (not shard or "\x00" in shard or posix.is_absolute() or PureWindowsPath(shard).drive
            or ".." in posix.parts):
        raise CorruptFileError(
            f"{index_path}: refused shard name {quote(shard)}: shards must be named relative "
            "to the index's folder, without '..'"
        )
    candidate = folder.joinpath(*posix.parts)
    if not candidate.is_file():
        raise CorruptFileError(
            f"{index_path}: shard {quote(shard)} named in the weight_map is missing "
            f"(no file {candidate}): incomplete download?"
        )
    base = folder.resolve()
    target = candidate.resolve()
    hub_blobs = base.parent.parent / "blobs" if base.parent.name == "snapshots" else None
    if not (is_within(target, base) or (hub_blobs and is_within(target, hub_blobs))):
        raise CorruptFileError(
            f"{index_path}: refused shard {quote(shard)}: it is a link to {target}, outside "
            "the index's folder"
        )
    return candidate


def _check_agreement(index_path: Location, weight_map: dict[str, str],
                     found: dict[str, str]) -> None:
    astray = [(k, s) for k, s in weight_map.items() if found.get(k) != s]
    unlisted = sorted(k for k in found if k not in weight_map)
    if not astray and not unlisted:
        return
    problems = []
    if astray:
        key, shard = astray[0]
        actual = found.get(key)
        where = "in no shard" if actual is None else f"in {quote(actual)}"
        problems.append(f"{len(astray)} weight_map keys are not in the shard it names "
                        f"(e.g. {quote(key)} → {quote(shard)}, but it is {where})")
    if unlisted:
        key = unlisted[0]
        problems.append(f"{len(unlisted)} tensors in the shards are not in the weight_map "
                        f"(e.g. {quote(key)} in {quote(found[key])})")
    raise CorruptFileError(
        f"{index_path}: the index and its shards disagree: {'; '.join(problems)}"
    )
