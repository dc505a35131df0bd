"""``ckptdiff diff --tree``: the union of both key sets as one tree, each node marked.

A subtree where everything matches is one collapsed line (``layers.{0..30}  ×31  ✓ 9 matched
each``), as is a subtree that one rename rule fixes entirely, so the broken branch stands out.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ckptdiff.diffing.report import TensorSide
from ckptdiff.graph.diff import DiffLeaf, DiffTree, ordered_counts
from ckptdiff.graph.tree import TreeNode
from ckptdiff.render.rows import (
    describe,
    judged_by,
    outlook,
    side_line,
    summary_counts,
    verdict,
    verdict_reason,
)
from ckptdiff.render.tree import compact, make_console

if TYPE_CHECKING:
    from rich.text import Text
    from rich.tree import Tree

STATUS_STYLE = {"renamed": "blue", "missing": "red", "unexpected": "red", "shape": "magenta",
                "dtype": "yellow", "device": "yellow", "optimizer": "cyan", "matched": "green",
                "ignored": "dim", "info": "cyan"}
SEVERITY_MARK = {"error": ("✗", "bold red"), "warning": ("!", "bold yellow"),
                 "info": ("i", "cyan"), None: ("✓", "green")}


def shape_dtype(side: TensorSide) -> str:
    """``[2, 768] float32``: the device only matters where it differs, so it is left out."""
    return f"[{', '.join(map(str, side.shape))}] {side.dtype}"


def change(source: TensorSide | None, target: TensorSide | None) -> str:
    """``[2, 768] → [10, 768] float32``: the common part said once."""
    if source is None or target is None:
        return f"{describe(source)} → {describe(target)}"
    if source.device != target.device:
        return f"{describe(source)} → {describe(target)}"
    if source.dtype == target.dtype:
        return f"{shape_dtype(source).rsplit(' ', 1)[0]} → {shape_dtype(target)}"
    return f"{shape_dtype(source)} → {shape_dtype(target)}"


def leaf_text(leaf: DiffLeaf, folded: bool) -> str:
    """What happened to one key: ``shape [2, 768] → [10, 768]``, ``renamed to …``."""
    if leaf.status == "renamed":
        where = "to" if leaf.source is not None else "from"
        partner = "" if folded else f" {leaf.partner}"
        return f"renamed {where}{partner} ({leaf.rule})"
    if leaf.status in ("shape", "dtype", "device"):
        kinds = "+".join(f.kind for f in leaf.findings)
        text = f"{kinds} {change(leaf.source, leaf.target)}"
    else:
        side = leaf.target or leaf.source
        text = leaf.status if side is None else f"{leaf.status} {shape_dtype(side)}"
    notes = [f.note for f in leaf.findings if f.note]
    return text + (f" · {notes[0]}" if notes else "")


@dataclass(frozen=True)
class NodeView:
    """How one node of the diff tree shows: its mark, colour, text, and whether it stays shut."""

    worst: str | None  # the worst severity below: the mark (✗ ! i ✓)
    status: str  # the colour: a key's status, ``info``, a subtree's only status, or ``mixed``
    detail: str
    collapsed: bool  # everything matches, or one rename rule covers everything


def node_view(tree: DiffTree, node: TreeNode[DiffLeaf]) -> NodeView:
    """The view of ``node``; sizes of a folded group are per member (``each``)."""
    if node.item is not None and not node.children:
        leaf = node.item
        status = "info" if leaf.severity == "info" else leaf.status
        return NodeView(leaf.severity, status, leaf_text(leaf, node.count > 1), True)
    summary = tree.summary(node)
    each = tree.summary(node.group[0]) if node.group else summary
    detail = " · ".join(f"{n} {status}" for status, n in ordered_counts(Counter(each.counts)))
    if node.count > 1:
        detail += " each"
    if summary.single_rule is not None:
        detail += f" ({summary.single_rule})"
    status = next(iter(summary.counts)) if len(summary.counts) == 1 else "mixed"
    return NodeView(summary.worst, status, detail, summary.ok or summary.single_rule is not None)


def _label(tree: DiffTree, label: str, node: TreeNode[DiffLeaf]) -> Text:
    from rich.text import Text

    view = node_view(tree, node)
    mark, mark_style = SEVERITY_MARK[view.worst]
    text = Text(label, style="bold" if node.children else "")
    if node.count > 1:
        text.append(f"  ×{node.count}", style="magenta")
    text.append(f"  {mark} ", style=mark_style)
    text.append(view.detail, style=STATUS_STYLE.get(view.status, ""))
    return text


def _grow(tree: DiffTree, branch: Tree, node: TreeNode[DiffLeaf]) -> None:
    for child in node.children:
        label, end = compact(child)
        twig = branch.add(_label(tree, label, end))
        if end.children and not node_view(tree, end).collapsed:
            if end.item is not None:
                twig.add(_label(tree, "(itself)", TreeNode(end.name, item=end.item)))
            _grow(tree, twig, end)


def render_diff_tree(tree: DiffTree, *, color: bool = False, width: int | None = None) -> str:
    """The report header, then the union tree with only broken branches expanded, then rules."""
    from rich.text import Text
    from rich.tree import Tree

    report = tree.report
    console, buffer = make_console(color, width)
    mark, style = ("✓", "bold green") if report.compatible else ("✗", "bold red")
    console.print(Text.assemble((f"{mark} {verdict(report)}", style), judged_by(report), "  ",
                                summary_counts(report)))
    for line in (verdict_reason(report), outlook(report)):
        if line:
            console.print(f"  {line}", markup=False)
    for label, side in (("source", report.source), ("target", report.target)):
        console.print(side_line(f"  {label}", side.path, side.format, side.tensors,
                                side.container_key), style="dim")
    top = Tree(_label(tree, tree_title(tree), tree.root))
    # The root always opens unless all is well: one rename rule for everything still shows
    # which top-level branches it moves.
    if not tree.is_ok(tree.root):
        _grow(tree, top, tree.root)
    console.print(top)
    for rule in report.rules:
        console.print(f"rule: re.sub({rule.pattern!r}, {rule.replacement!r}, key)"
                      f"   # {rule.matches} keys", style="green")
    return buffer.getvalue()


def tree_title(tree: DiffTree) -> str:
    """What the root stands for: the union, or only the keys with findings."""
    if tree.complete:
        return "union of both key sets"
    return f"keys with findings ({tree.report.matched} matched keys not shown)"
