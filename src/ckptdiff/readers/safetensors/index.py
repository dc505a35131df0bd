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

from typing import Any, ClassVar

from ckptdiff.errors import CkptdiffError, CorruptFileError
from ckptdiff.manifest import Manifest, TensorInfo
from ckptdiff.readers.base import Location
from ckptdiff.readers.safetensors.header import read_header
from ckptdiff.readers.safetensors.single import (
    FILE_SUFFIX,
    INDEX_SUFFIX,
    list_directory,
    other_dtype_codes,
    refuse_key,
    tensor_infos,
)
from ckptdiff.readers.safetensors.strict_json import quote
from ckptdiff.readers.shard_index import check_agreement, load_index, shard_path
from ckptdiff.sources import progress


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
        index_metadata, weight_map, bytes_read = load_index(index_path)
        folder = index_path.parent
        tensors: list[TensorInfo] = []
        shards: list[dict[str, Any]] = []
        found: dict[str, str] = {}
        codes: dict[str, str] = {}
        shard_names = sorted(set(weight_map.values()))
        for number, shard in enumerate(shard_names):
            progress.note_step(number, len(shard_names), shard)
            header = read_header(shard_path(index_path, folder, shard))
            bytes_read += header.bytes_read
            for entry in header.entries:
                if entry.key in found:
                    raise CorruptFileError(
                        f"{index_path}: tensor {quote(entry.key)} is stored in two shards, "
                        f"{quote(found[entry.key])} and {quote(shard)}"
                    )
                found[entry.key] = shard
            tensors.extend(tensor_infos(header, shard))
            codes.update(other_dtype_codes(header))
            shards.append({"file": shard, "tensors": len(header.entries),
                           "safetensors": header.metadata})
        check_agreement(index_path, weight_map, found)
        metadata: dict[str, object] = {"index": index_metadata, "shards": shards}
        if codes:
            metadata["dtype_codes"] = codes
        metadata["bytes_read"] = bytes_read
        return Manifest(
            path=str(path),
            format=self.name,
            tensors=tuple(tensors),
            metadata=metadata,
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
