"""The ``torch-sharded`` reader: a ``pytorch_model.bin.index.json`` and the torch shards it names.

``save_pretrained(..., safe_serialization=False)`` writes one ``torch.save`` state dict per shard
(``pytorch_model-00001-of-00002.bin`` …) and an index (``{"metadata": {...}, "weight_map":
{key: shard}}``) in the layout of sharded safetensors. Each shard is read by the ``torch-zip`` or
``torch-legacy`` reader (pickle only, never the weights); the index and the shards must agree
exactly, and shard names follow the same rules as for safetensors (relative, no ``..``, links only
into the Hugging Face cache's ``blobs/``). Storages are named ``<shard>/<storage>``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, ClassVar

from ckptdiff.errors import CkptdiffError, CorruptFileError
from ckptdiff.manifest import Manifest, TensorInfo
from ckptdiff.readers.base import Location, read_head
from ckptdiff.readers.safetensors.single import refuse_key
from ckptdiff.readers.shard_index import check_agreement, load_index, shard_path
from ckptdiff.readers.torch.legacy import TorchLegacyReader
from ckptdiff.readers.torch.zip import TorchZipReader
from ckptdiff.sources import progress

INDEX_SUFFIX = ".bin.index.json"


def _index_files(folder: Location) -> list[Location]:
    try:
        return sorted(p for p in folder.iterdir() if p.name.endswith(INDEX_SUFFIX)
                      and p.is_file())
    except OSError:
        return []


class ShardedTorchReader:
    """Sharded ``pytorch_model.bin`` checkpoints: the index, or a folder holding one."""

    name: ClassVar[str] = "torch-sharded"
    extensions: ClassVar[tuple[str, ...]] = (INDEX_SUFFIX,)
    description: ClassVar[str] = "sharded PyTorch .bin checkpoint (index + shard pickles)"
    requires: ClassVar[tuple[str, ...]] = ()
    extra: ClassVar[str | None] = None

    def sniff(self, head: bytes, path: Location) -> bool:
        """A JSON ``weight_map`` naming ``.bin`` shards; or a folder with one such index and no
        safetensors (which the safetensors readers take first, as from_pretrained does)."""
        if not head:
            if not path.is_dir() or len(_index_files(path)) != 1:
                return False
            return not any(p.name.endswith(".safetensors") for p in path.iterdir())
        if not head.lstrip().startswith(b"{") or b'"weight_map"' not in head:
            return False
        return b'.safetensors"' not in head and (path.name.endswith(INDEX_SUFFIX)
                                                 or b'.bin"' in head)

    def read(self, path: Location, key: str | None = None) -> Manifest:
        """Read the index, then each shard's pickle; tensors in shard order."""
        refuse_key(path, key)
        index = _index_files(path)[0] if path.is_dir() else path
        try:
            metadata, weight_map, bytes_read = load_index(index)
            tensors, shards, found, shard_bytes = self._shards(index, weight_map)
        except OSError as exc:
            raise CkptdiffError(f"{path}: cannot read: {exc.strerror or exc}") from None
        check_agreement(index, weight_map, found)
        return Manifest(path=str(path), format=self.name, tensors=tuple(tensors),
                        metadata={"index": metadata, "shards": shards,
                                  "bytes_read": bytes_read + shard_bytes})

    def _shards(self, index: Location, weight_map: dict[str, str]) -> tuple[
            list[TensorInfo], list[dict[str, Any]], dict[str, str], int]:
        tensors: list[TensorInfo] = []
        shards: list[dict[str, Any]] = []
        found: dict[str, str] = {}
        bytes_read = 0
        names = sorted(set(weight_map.values()))
        for number, shard in enumerate(names):
            progress.note_step(number, len(names), shard)
            file = shard_path(index, index.parent, shard)
            head = read_head(file)
            reader: TorchZipReader | TorchLegacyReader
            if TorchZipReader().sniff(head, file):
                reader = TorchZipReader()
            elif TorchLegacyReader().sniff(head, file):
                reader = TorchLegacyReader()
            else:
                raise CorruptFileError(f"{index}: shard {shard} is not a torch.save file "
                                       f"(first bytes {head[:16]!r})")
            manifest = reader.read(file)
            for tensor in manifest.tensors:
                if tensor.key in found:
                    raise CorruptFileError(f"{index}: tensor {tensor.key!r} is stored in two "
                                           f"shards, {found[tensor.key]} and {shard}")
                found[tensor.key] = shard
                storage = None if tensor.storage is None else f"{shard}/{tensor.storage}"
                tensors.append(replace(tensor, storage=storage))
            bytes_read += int(manifest.metadata.get("bytes_read", 0))
            shards.append({"file": shard, "format": manifest.format,
                           "tensors": len(manifest.tensors)})
        return tensors, shards, found, bytes_read
