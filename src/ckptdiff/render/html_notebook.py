"""``_repr_html_`` of Report and Manifest: a compact picture for Jupyter, no JavaScript needed.

Notebook front ends differ in whether they run scripts in outputs, so the fragment is plain
nested ``<details>`` (open where something is broken) with scoped inline styles, capped at
``ROW_BUDGET`` rows: a notebook cell is for a glance, ``--format html`` for the whole thing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from ckptdiff.diffing.report import Report
from ckptdiff.graph.diff import DiffLeaf, diff_tree
from ckptdiff.graph.manifest import manifest_graph
from ckptdiff.graph.tree import TreeNode
from ckptdiff.manifest import Manifest, TensorInfo
from ckptdiff.render.html import esc
from ckptdiff.render.manifest_view import summary_line
from ckptdiff.render.rows import summary_counts, verdict
from ckptdiff.render.tree import compact, describe_tensor, stats_text
from ckptdiff.render.tree_diff import node_view

T = TypeVar("T")
ROW_BUDGET = 120
_STYLE = (
    "<style>.ckd{font:12px/1.4 ui-monospace,Menlo,Consolas,monospace}"
    ".ckd details>div,.ckd details>details{margin-left:1.4em}.ckd summary{cursor:pointer}"
    ".ckd .d{opacity:.7}.ckd .e{color:#cf222e}.ckd .w{color:#9a6700}.ckd .o{color:#1a7f37}"
    ".ckd .i{color:#1b7c83}.ckd .h{font:600 13px system-ui,sans-serif}</style>"
)
_MARK = {"error": ("✗", "e"), "warning": ("!", "w"), "info": ("i", "i"), None: ("✓", "o")}
Line = Callable[[str, TreeNode[T]], str]


def _tree(root: TreeNode[T], line: Line[T], opened: Callable[[TreeNode[T]], bool]) -> str:
    budget = [ROW_BUDGET]
    out: list[str] = []

    def emit(node: TreeNode[T]) -> None:
        for child in node.children:
            if budget[0] <= 0:
                out.append(f'<div class="d">… {len(node.children)} entries here, more in '
                           "--format html</div>")
                return
            budget[0] -= 1
            label, end = compact(child)
            if not end.children:
                out.append(f"<div>{line(label, end)}</div>")
                continue
            out.append(f"<details{' open' if opened(end) else ''}><summary>"
                       f"{line(label, end)}</summary>")
            emit(end)
            out.append("</details>")

    emit(root)
    return "".join(out)


def report_fragment(report: Report) -> str:
    """Verdict, counts, the tree of keys with findings (broken branches open) and the rules."""
    tree = diff_tree(report)

    def line(label: str, node: TreeNode[DiffLeaf]) -> str:
        view = node_view(tree, node)
        mark, css = _MARK[view.worst]
        fold = f" ×{node.count}" if node.count > 1 else ""
        return f'{esc(label)}{fold} <span class="{css}">{mark} {esc(view.detail)}</span>'

    css = "o" if report.compatible else "e"
    rules = "".join(f"<div>re.sub({esc(repr(r.pattern))}, {esc(repr(r.replacement))}, key)"
                    f' <span class="d"># {r.matches} keys</span></div>' for r in report.rules)
    body = _tree(tree.root, line, lambda node: not node_view(tree, node).collapsed)
    return (f'{_STYLE}<div class="ckd"><div class="h {css}">{esc(verdict(report))}: '
            f"{esc(summary_counts(report))}</div>"
            f'<div class="d">{esc(report.source.path)} → {esc(report.target.path)}</div>'
            f"{body}{rules}</div>")


def manifest_fragment(manifest: Manifest) -> str:
    """Summary line and the folded module tree (its top level open)."""
    graph = manifest_graph(manifest)

    def line(label: str, node: TreeNode[TensorInfo]) -> str:
        fold = f" ×{node.count}" if node.count > 1 else ""
        if node.item is not None and not node.children:
            detail = describe_tensor(graph, node.item)
        else:
            detail = stats_text(graph.stats(node.group[0] if node.group else node),
                                node.count > 1)
        return f'{esc(label)}{fold} <span class="d">{esc(detail)}</span>'

    root = graph.folded()
    top = {id(compact(child)[1]) for child in root.children}
    body = _tree(root, line, lambda node: id(node) in top)
    return (f'{_STYLE}<div class="ckd"><div class="h">{esc(manifest.path)}</div>'
            f'<div class="d">{esc(summary_line(manifest))}</div>{body}</div>')
