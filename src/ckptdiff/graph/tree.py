"""Keys as a module tree: ``model.layers.3.mlp.weight`` is a path of segments, not a flat string.

Pure Python over strings. Keys split on ``.`` and ``/``; numeric segments are list indices, and
siblings that are indices with structurally identical subtrees fold into one group
(``layers.{0..31}``, :mod:`ckptdiff.graph.fold`). The manifest graph (sizes, tied weights,
optimizer slots, shards) is in :mod:`ckptdiff.graph.manifest`; the diff as a tree is in
:mod:`ckptdiff.graph.diff`.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")
S = TypeVar("S")

_SEPARATOR = re.compile(r"[./]")
# Deeper keys keep their tail as one segment: the tree stays far below Python's recursion limit
# whatever a (possibly hostile) file names its tensors.
MAX_DEPTH = 64


@contextmanager
def quiet_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while a big tree is built.

    Trees hold no cycles, but every small object they are made of counts towards a collection,
    and each full collection walks everything built so far: with it on, 100k keys take about
    twice as long.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def split_key(key: str) -> list[tuple[str, str, str]]:
    """``(separator, segment, prefix)`` per segment; ``prefix`` is the key up to that segment.

    An empty segment (``a/.ATTRIBUTES``, a leading ``.``) keeps its separator inside the next
    segment's name, so no node is ever nameless and ``prefix`` of the last part is ``key``.
    Past ``MAX_DEPTH`` segments the rest of the key is one segment.
    """
    parts: list[tuple[str, str, str]] = []
    separator = ""
    start = 0
    for match in _SEPARATOR.finditer(key):
        if len(parts) == MAX_DEPTH - 1:
            break
        if match.start() == start:  # empty segment: the separator belongs to the next name
            continue
        parts.append((separator, key[start:match.start()], key[:match.start()]))
        separator, start = match.group(), match.end()
    parts.append((separator, key[start:], key))
    return parts


def is_index(segment: str) -> bool:
    """A list index: digits without a leading zero (so folding back to ``{0..31}`` is exact)."""
    return segment.isdigit() and (segment == "0" or not segment.startswith("0"))


@dataclass(slots=True)
class TreeNode(Generic[T]):
    """One module (or tensor) of the key tree.

    ``item`` is what is stored at exactly ``path`` (a tensor), if anything; a node can hold an
    item and children at once (``dense`` and ``dense/kernel``). A folded node stands for the
    sibling subtrees in ``group`` (its first member's children are shown for all of them).
    """

    name: str
    separator: str = ""
    path: str = ""
    item: T | None = None
    children: list[TreeNode[T]] = field(default_factory=list)
    group: tuple[TreeNode[T], ...] = ()

    @property
    def count(self) -> int:
        """How many sibling subtrees this node stands for (1 unless folded)."""
        return len(self.group) or 1

    def items(self) -> Iterator[T]:
        """Every item of the subtree in key order, every member of a folded group included."""
        # A stack, not nested generators: those cost a step per level for every item.
        stack: list[TreeNode[T]] = [self]
        while stack:
            node = stack.pop()
            if node.group:
                stack.extend(reversed(node.group))
                continue
            if node.item is not None:
                yield node.item
            stack.extend(reversed(node.children))


@quiet_gc()
def build_tree(entries: Iterable[tuple[str, T]]) -> TreeNode[T]:
    """The tree of ``(key, item)`` pairs; children in first-seen order, indices numerically."""
    root: TreeNode[T] = TreeNode("")
    # A prefix names exactly one node: splitting is a function of the string.
    by_prefix: dict[str, TreeNode[T]] = {}
    for key, item in entries:
        node = by_prefix.get(key)
        if node is None:
            node = _add_fast(root, by_prefix, key) or _add_path(root, by_prefix, key)
        node.item = item
    _order_indices(root)
    return root


def _add_fast(root: TreeNode[T], by_prefix: dict[str, TreeNode[T]], key: str) -> TreeNode[T] | None:
    """The common case fast: cut plain segments off the end until a known ancestor.

    ``None`` where a segment is empty or the key is deep (then :func:`split_key` decides).
    """
    if key.count(".") + key.count("/") >= MAX_DEPTH - 1:
        return None
    missing: list[tuple[str, str, str]] = []
    prefix, parent = key, root
    while True:
        cut = max(prefix.rfind("."), prefix.rfind("/"))
        if cut == -1:
            if not prefix:
                return None
            missing.append(("", prefix, prefix))
            break
        if cut == 0 or cut == len(prefix) - 1 or prefix[cut - 1] in "./":
            return None
        missing.append((prefix[cut], prefix[cut + 1:], prefix))
        prefix = prefix[:cut]
        found = by_prefix.get(prefix)
        if found is not None:
            parent = found
            break
    for separator, segment, path in reversed(missing):
        child: TreeNode[T] = TreeNode(segment, separator, path)
        parent.children.append(child)
        by_prefix[path] = child
        parent = child
    return parent


def _add_path(root: TreeNode[T], by_prefix: dict[str, TreeNode[T]], key: str) -> TreeNode[T]:
    parts = split_key(key)
    start, parent = len(parts) - 1, root
    while start > 0:  # the deepest ancestor that exists already
        found = by_prefix.get(parts[start - 1][2])
        if found is not None:
            parent = found
            break
        start -= 1
    for separator, segment, prefix in parts[start:]:
        child: TreeNode[T] = TreeNode(segment, separator, prefix)
        parent.children.append(child)
        by_prefix[prefix] = child
        parent = child
    return parent


def _order_indices(node: TreeNode[T]) -> None:
    # Stored order is often lexicographic (1, 10, 11, 2, …): indices go back into numeric order,
    # in the places indices held, so named siblings keep their own positions.
    positions = [i for i, child in enumerate(node.children) if is_index(child.name)]
    ordered = sorted((node.children[i] for i in positions), key=lambda c: int(c.name))
    for position, child in zip(positions, ordered, strict=True):
        node.children[position] = child
    for child in node.children:
        _order_indices(child)


class Summaries(Generic[T, S]):
    """Per-node summaries of subtrees (counts, sizes), each computed once, bottom-up.

    A subtree's summary merges its item's and its children's; a folded group's merges its
    members'. Walking every subtree of every node instead would cost keys × depth.
    """

    def __init__(self, of_item: Callable[[T], S], merge: Callable[[list[S]], S]) -> None:
        self._of_item = of_item
        self._merge = merge
        # Keyed by id, holding the node too so that an id is never reused while remembered.
        self._memo: dict[int, tuple[TreeNode[T], S]] = {}

    def __call__(self, node: TreeNode[T]) -> S:
        known = self._memo.get(id(node))
        if known is not None:
            return known[1]
        if node.group:
            parts = [self(member) for member in node.group]
        else:
            parts = [self(child) for child in node.children]
            if node.item is not None:
                parts.append(self._of_item(node.item))
        summary = self._merge(parts)
        self._memo[id(node)] = (node, summary)
        return summary
