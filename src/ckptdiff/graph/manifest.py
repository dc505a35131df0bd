"""A manifest as a graph: the module tree with sizes, tied-weight and optimizer-slot edges, shards.

Totals follow the inspect summary line: a tied tensor's storage is counted once (under its first
key), and ``params`` counts the elements of parameters and buffers, not optimizer state.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field

from ckptdiff.dtypes import itemsize
from ckptdiff.graph.fold import fold_tree
from ckptdiff.graph.tree import Summaries, TreeNode, build_tree
from ckptdiff.manifest import Manifest, TensorInfo

WEIGHT_KINDS = ("parameter", "buffer")
# ``storage`` names a file of a multi-file checkpoint (a safetensors shard, a TF data shard);
# torch archives name a storage record inside the one file instead, which is no shard.
_SHARD_FILE = re.compile(r"(\.(safetensors|bin|pt|pth|h5|keras)|data-\d+-of-\d+)$")


@dataclass(frozen=True)
class Edge:
    """A relation between two keys: ``alias`` (tied weights) or ``slot`` (slot → its variable)."""

    kind: str
    source: str
    target: str


@dataclass
class NodeStats:
    """What a subtree holds: tensors, parameters, bytes (total and per dtype)."""

    tensors: int = 0
    params: int = 0
    nbytes: int = 0
    bytes_by_dtype: dict[str, int] = field(default_factory=dict)
    unknown_size: int = 0  # tensors whose size the format does not give (strings)
    shared: int = 0  # tied copies: tensors whose storage is counted under another key

    def add(self, info: TensorInfo, shared: bool) -> None:
        """Count ``info``; a ``shared`` one (a tied copy) adds a tensor but no size."""
        self.tensors += 1
        if shared:
            self.shared += 1
            return
        if info.kind in WEIGHT_KINDS:
            self.params += info.numel
        size = tensor_nbytes(info)
        if size is None:
            self.unknown_size += 1
            return
        self.nbytes += size
        self.bytes_by_dtype[info.dtype] = self.bytes_by_dtype.get(info.dtype, 0) + size

    @classmethod
    def merge(cls, parts: list[NodeStats]) -> NodeStats:
        """The totals of several subtrees."""
        if len(parts) == 1:
            return parts[0]
        total = cls()
        for part in parts:
            total.tensors += part.tensors
            total.params += part.params
            total.nbytes += part.nbytes
            total.unknown_size += part.unknown_size
            total.shared += part.shared
            for dtype, size in part.bytes_by_dtype.items():
                total.bytes_by_dtype[dtype] = total.bytes_by_dtype.get(dtype, 0) + size
        return total


def tensor_nbytes(info: TensorInfo) -> int | None:
    """Bytes of ``info``: as stored, else from its dtype; ``None`` when neither says."""
    if info.nbytes is not None:
        return info.nbytes
    size = itemsize(info.dtype)
    return None if size is None else size * info.numel


def shared_copies(manifest: Manifest) -> frozenset[str]:
    """Keys that repeat a tied tensor stored under an earlier (smaller) key: counted once."""
    copies = set()
    for info in manifest.tensors:
        for alias in info.aliases:
            other = manifest.by_key.get(alias)
            if (other is not None and alias < info.key and other.shape == info.shape
                    and other.storage_offset == info.storage_offset):
                copies.add(info.key)
                break
    return frozenset(copies)


@dataclass
class ManifestGraph:
    """The module tree of a manifest plus the edges and file membership between its tensors."""

    manifest: Manifest
    tree: TreeNode[TensorInfo]
    edges: tuple[Edge, ...]
    shards: dict[str, list[str]]
    copies: frozenset[str]
    selected: int
    _stats: Summaries[TensorInfo, NodeStats] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._stats = Summaries(lambda info: self.stats_of((info,)), NodeStats.merge)

    def stats(self, node: TreeNode[TensorInfo]) -> NodeStats:
        """Totals of ``node``'s subtree (every member of a folded group)."""
        return self._stats(node)

    def stats_of(self, infos: Iterable[TensorInfo]) -> NodeStats:
        """Totals of ``infos``."""
        stats = NodeStats()
        for info in infos:
            stats.add(info, info.key in self.copies)
        return stats

    def tied(self, info: TensorInfo) -> tuple[str, ...]:
        """The keys of this manifest that share ``info``'s storage."""
        return tuple(alias for alias in info.aliases if alias in self.manifest)

    def folded(self) -> TreeNode[TensorInfo]:
        """The tree with identical index siblings (``layers.{0..31}``) folded."""
        return fold_tree(self.tree, self._signature)

    def _signature(self, info: TensorInfo) -> Hashable:
        return (info.shape, info.dtype, info.kind, info.device, info.key in self.copies)


def manifest_graph(manifest: Manifest, key_glob: str | None = None) -> ManifestGraph:
    """The graph of ``manifest``; ``key_glob`` keeps only the tensors whose key matches."""
    chosen = [t for t in manifest.tensors
              if key_glob is None or fnmatch.fnmatchcase(t.key, key_glob)]
    copies = shared_copies(manifest)
    tree = build_tree((t.key, t) for t in chosen)
    return ManifestGraph(manifest, tree, tuple(edges(manifest)), shard_members(manifest),
                         copies, len(chosen))


def edges(manifest: Manifest) -> list[Edge]:
    """Alias edges (once per tied pair) and slot edges from each optimizer slot to its variable.

    A slot names its variable by key or by the framework's own ``variable_name``; one naming
    neither keeps the name it gives (the variable is then not in this manifest).
    """
    by_variable = {t.variable_name: t.key for t in manifest.tensors if t.variable_name}
    found: list[Edge] = []
    seen: set[tuple[str, str]] = set()
    for info in manifest.tensors:
        # Only aliases that are keys here: a reader may also name raw storage entries.
        for alias in (a for a in info.aliases if a in manifest):
            pair = (min(info.key, alias), max(info.key, alias))
            if pair not in seen:
                seen.add(pair)
                found.append(Edge("alias", *pair))
        if info.slot_of is not None:
            owner = info.slot_of if info.slot_of in manifest else by_variable.get(info.slot_of)
            found.append(Edge("slot", info.key, owner or info.slot_of))
    return found


def shard_members(manifest: Manifest) -> dict[str, list[str]]:
    """Keys per shard file, in stored order; empty unless tensors name the files they live in."""
    members: dict[str, list[str]] = {}
    for info in manifest.tensors:
        if info.storage is None or not _SHARD_FILE.search(info.storage):
            return {}
        members.setdefault(info.storage, []).append(info.key)
    return members
