"""``ckptdiff diff --tree``: the union of both key sets as one tree, each node marked.

A subtree where everything matches is one collapsed line (``layers.{0..30}  ×31  ✓ 9 matched
each``), as is a subtree that one rename rule fixes entirely, so the broken branch stands out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ckptdiff.errors import UsageError
from ckptdiff.graph import TreeNode
from ckptdiff.graph_diff import DiffLeaf, DiffTree, diff_tree, ordered_counts
from ckptdiff.manifest import Manifest
from ckptdiff.render.rows import describe, side_line, summary_counts, verdict
from ckptdiff.render.tree import compact, make_console
from ckptdiff.report import Report, TensorSide

if TYPE_CHECKING:
    from rich.text import Text
    from rich.tree import Tree

STATUS_STYLE = {"renamed": "blue", "missing": "red", "unexpected": "red", "shape": "magenta",
                "dtype": "yellow", "device": "yellow", "optimizer": "cyan", "matched": "green",
                "ignored": "dim"}
SEVERITY_MARK = {"error": ("✗", "bold red"), "warning": ("!", "bold yellow"),
                 "info": ("i", "cyan"), None: ("✓", "green")}


def worst_severity(leaves: list[DiffLeaf]) -> str | None:
    """``error``, ``warning``, ``info`` or ``None`` (all matched) over ``leaves``."""
    severities = {leaf.severity for leaf in leaves}
    return next((s for s in ("error", "warning", "info") if s in severities), None)


def counts_text(node: TreeNode[DiffLeaf]) -> str:
    """``2 missing · 1 shape · 36 matched`` (per member of a folded group, marked ``each``)."""
    counts = DiffTree.counts(node.group[0] if node.group else node)
    text = " · ".join(f"{n} {status}" for status, n in ordered_counts(counts))
    return text + (" each" if node.count > 1 else "")


def single_rule(node: TreeNode[DiffLeaf]) -> str | None:
    """The rule when every key below ``node`` is renamed by that one rule, else ``None``."""
    rules = {leaf.rule if leaf.status == "renamed" else None for leaf in node.items()}
    return next(iter(rules)) if len(rules) == 1 else None


def shape_dtype(side: TensorSide) -> str:
    """``[2, 768] float32``: the device only matters where it differs, so it is left out."""
    return f"[{', '.join(str(d) for d in side.shape)}] {side.dtype}"


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


def _label(label: str, node: TreeNode[DiffLeaf]) -> Text:
    from rich.text import Text

    leaves = list(node.items())
    mark, mark_style = SEVERITY_MARK[worst_severity(leaves)]
    text = Text(label, style="bold" if node.children else "")
    if node.count > 1:
        text.append(f"  ×{node.count}", style="magenta")
    text.append(f"  {mark} ", style=mark_style)
    if node.item is not None and not node.children:
        style = "cyan" if node.item.severity == "info" else STATUS_STYLE.get(node.item.status, "")
        text.append(leaf_text(node.item, node.count > 1), style=style)
        return text
    rule = single_rule(node)
    text.append(counts_text(node), style=STATUS_STYLE.get(leaves[0].status, "")
                if len({leaf.status for leaf in leaves}) == 1 else "")
    if rule is not None:
        text.append(f" ({rule})", style="blue")
    return text


def is_collapsed(node: TreeNode[DiffLeaf]) -> bool:
    """True when one line says it all: everything matches, or one rule renames everything."""
    return DiffTree.is_ok(node) or single_rule(node) is not None


def _grow(tree: Tree, node: TreeNode[DiffLeaf]) -> None:
    for child in node.children:
        label, end = compact(child)
        branch = tree.add(_label(label, end))
        if end.children and not is_collapsed(end):
            if end.item is not None:
                branch.add(_label("(itself)", TreeNode(end.name, item=end.item)))
            _grow(branch, end)


def render_diff_tree(tree: DiffTree, *, color: bool = False, width: int | None = None) -> str:
    """The report header, then the union tree with only broken branches expanded, then rules."""
    from rich.text import Text
    from rich.tree import Tree

    report = tree.report
    console, buffer = make_console(color, width)
    mark, style = ("✓", "bold green") if report.compatible else ("✗", "bold red")
    console.print(Text.assemble((f"{mark} {verdict(report)}", style), "  ", summary_counts(report)))
    for label, side in (("source", report.source), ("target", report.target)):
        console.print(side_line(f"  {label}", side.path, side.format, side.tensors,
                                side.container_key), style="dim")
    title = "union of both key sets" if tree.complete else (
        f"keys with findings ({report.matched} matched keys not shown)")
    top = Tree(_label(title, tree.root))
    # The root always opens unless all is well: one rename rule for everything still shows
    # which top-level branches it moves.
    if not DiffTree.is_ok(tree.root):
        _grow(top, tree.root)
    console.print(top)
    for rule in report.rules:
        console.print(f"rule: re.sub({rule.pattern!r}, {rule.replacement!r}, key)"
                      f"   # {rule.matches} keys", style="green")
    return buffer.getvalue()


def render_diff_view(report: Report, source: Manifest, target: Manifest, fmt: str, *,
                     color: bool = False, width: int | None = None) -> str:
    """The diff as a tree: drawn for the terminal (``fmt`` ``table``) or as the ``html`` page."""
    tree = diff_tree(report, source, target)
    if fmt == "html":
        from ckptdiff.render.html import render_diff_html

        return render_diff_html(tree)
    if fmt == "table":
        return render_diff_tree(tree, color=color, width=width)
    raise UsageError(f"the diff tree is drawn as table or html, not {fmt}")
