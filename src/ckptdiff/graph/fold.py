"""Folding of the key tree: index siblings with identical subtrees become one group.

``layers.0`` … ``layers.31`` of one shape fold into ``layers.{0..31}``; a layer that differs stays
apart (``{0..16,18..31}`` and ``17``). Folding is exact: a group stands for precisely its
members, and :func:`index_pattern` names exactly them.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import TypeVar

from ckptdiff.graph.tree import TreeNode, is_index, quiet_gc

T = TypeVar("T")


@quiet_gc()
def fold_tree(root: TreeNode[T], signature: Callable[[T], Hashable]) -> TreeNode[T]:
    """``root`` with index siblings of identical structure folded into groups.

    Two subtrees are identical when they hold the same relative keys and ``signature`` agrees on
    every item (shapes and dtypes for a manifest, statuses for a diff). ``root`` is left as it
    was; subtrees with nothing to fold are shared between both trees.
    """
    interned: dict[Hashable, int] = {}
    return _fold(root, signature, interned)[0]


def _fold(node: TreeNode[T], signature: Callable[[T], Hashable],
          interned: dict[Hashable, int]) -> tuple[TreeNode[T], int]:
    if not node.children:  # most nodes are leaves: nothing to fold, only a signature to intern
        structure: Hashable = (None if node.item is None else signature(node.item), ())
        return node, interned.setdefault(structure, len(interned))
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
                                     first.path, first.item, first.children, tuple(members)))
    item_signature = None if node.item is None else signature(node.item)
    # Hash-consing: a subtree's structure becomes one small int, so comparing two layers of a
    # 100k-key model costs one dict lookup instead of a deep comparison. Children are compared
    # as a set: sharded checkpoints list a layer's tensors in whatever order the shards hold.
    structure = (item_signature, tuple(sorted((c.separator, c.name, s) for c, s in folded)))
    shape_id = interned.setdefault(structure, len(interned))
    if len(children) == len(node.children) and all(
            a is b for a, b in zip(children, node.children, strict=True)):
        return node, shape_id
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
