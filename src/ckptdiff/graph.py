"""Keys as a module tree: ``model.layers.3.mlp.weight`` is a path of segments, not a flat string.

Pure Python over strings. Keys split on ``.`` and ``/``; numeric segments are list indices, and
siblings that are indices with structurally identical subtrees fold into one group
(``layers.{0..31}``). Folding is exact: a group stands for precisely its members. The manifest
graph (sizes, tied weights, optimizer slots, shards) is in :mod:`ckptdiff.graph_manifest`; the
diff as a tree is in :mod:`ckptdiff.graph_diff`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")

_SEPARATOR = re.compile(r"[./]")
# Deeper keys keep their tail as one segment: the tree stays far below Python's recursion limit
# whatever a (possibly hostile) file names its tensors.
MAX_DEPTH = 64


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


@dataclass
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
    group: list[TreeNode[T]] = field(default_factory=list)

    @property
    def count(self) -> int:
        """How many sibling subtrees this node stands for (1 unless folded)."""
        return len(self.group) or 1

    @property
    def is_leaf(self) -> bool:
        """True for a tensor with nothing below it."""
        return not self.children

    def items(self) -> Iterator[T]:
        """Every item of the subtree, every member of a folded group included."""
        for member in self.group or [self]:
            if member.item is not None:
                yield member.item
            for child in member.children:
                yield from child.items()

    def walk(self) -> Iterator[TreeNode[T]]:
        """This node and every node below it (first members of folded groups only)."""
        yield self
        for child in self.children:
            yield from child.walk()


def build_tree(entries: Iterable[tuple[str, T]]) -> TreeNode[T]:
    """The tree of ``(key, item)`` pairs; children in first-seen order, indices numerically."""
    root: TreeNode[T] = TreeNode("")
    index: dict[tuple[int, str, str], TreeNode[T]] = {}
    for key, item in entries:
        node = root
        for separator, segment, prefix in split_key(key):
            slot = (id(node), separator, segment)
            child = index.get(slot)
            if child is None:
                child = TreeNode(segment, separator, prefix)
                node.children.append(child)
                index[slot] = child
            node = child
        node.item = item
    _order_indices(root)
    return root


def _order_indices(node: TreeNode[T]) -> None:
    # Stored order is often lexicographic (1, 10, 11, 2, …): indices go back into numeric order,
    # in the places indices held, so named siblings keep their own positions.
    positions = [i for i, child in enumerate(node.children) if is_index(child.name)]
    ordered = sorted((node.children[i] for i in positions), key=lambda c: int(c.name))
    for position, child in zip(positions, ordered, strict=True):
        node.children[position] = child
    for child in node.children:
        _order_indices(child)


def fold_tree(root: TreeNode[T], signature: Callable[[T], Hashable]) -> TreeNode[T]:
    """A copy of ``root`` with index siblings of identical structure folded into groups.

    Two subtrees are identical when they hold the same relative keys and ``signature`` agrees on
    every item (shapes and dtypes for a manifest, statuses for a diff).
    """
    interned: dict[Hashable, int] = {}
    return _fold(root, signature, interned)[0]


def _fold(node: TreeNode[T], signature: Callable[[T], Hashable],
          interned: dict[Hashable, int]) -> tuple[TreeNode[T], int]:
    folded = [_fold(child, signature, interned) for child in node.children]
    groups: dict[tuple[str, int], list[TreeNode[T]]] = {}
    for child, shape_id in folded:
        if is_index(child.name):
            groups.setdefault((child.separator, shape_id), []).append(child)
    children: list[TreeNode[T]] = []
    for child, shape_id in folded:
        members = groups.get((child.separator, shape_id)) if is_index(child.name) else None
        if members is None or len(members) == 1:
            children.append(child)
        elif members[0] is child:
            first = members[0]
            children.append(TreeNode(index_pattern(m.name for m in members), first.separator,
                                     first.path, first.item, first.children, members))
    item_signature = None if node.item is None else signature(node.item)
    # Hash-consing: a subtree's structure becomes one small int, so comparing two layers of a
    # 100k-key model costs one dict lookup instead of a deep comparison.
    structure = (item_signature, tuple((c.separator, c.name, s) for c, s in folded))
    shape_id = interned.setdefault(structure, len(interned))
    return TreeNode(node.name, node.separator, node.path, node.item, children), shape_id


def index_pattern(indices: Iterable[str]) -> str:
    """``{0..4,6,8..31}``: exactly the given indices, runs of three or more as ranges."""
    numbers = sorted(int(i) for i in indices)
    runs: list[tuple[int, int]] = []
    for number in numbers:
        if runs and number == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], number)
        else:
            runs.append((number, number))
    text = ",".join(str(a) if a == b else f"{a},{b}" if b == a + 1 else f"{a}..{b}"
                    for a, b in runs)
    return "{" + text + "}"
