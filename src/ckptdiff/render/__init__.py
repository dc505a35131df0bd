"""One renderer per output format behind one interface; renderers only ever see a Report.

May import: the core, ``ckptdiff.diffing.report``, ``ckptdiff.graph`` (key trees) and
``ckptdiff.rename.snippet`` (code to paste); rich inside functions.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Protocol

from ckptdiff.diffing.report import Report
from ckptdiff.errors import UsageError

if TYPE_CHECKING:
    from ckptdiff.manifest import Manifest

# Imported lazily so the JSON path never pays for rich.
RENDERERS: dict[str, str] = {
    "table": "ckptdiff.render.table:TableRenderer",
    "json": "ckptdiff.render.json:JsonRenderer",
    "text": "ckptdiff.render.text:TextRenderer",
    "markdown": "ckptdiff.render.markdown:MarkdownRenderer",
    "github": "ckptdiff.render.github:GithubRenderer",
    "junit": "ckptdiff.render.junit:JunitRenderer",
    "html": "ckptdiff.render.html:HtmlRenderer",
}


class Renderer(Protocol):
    """Turns a report into the text of one output format."""

    name: str

    def render(self, report: Report, *, color: bool = False, width: int | None = None) -> str:
        """The whole output for ``report``."""
        ...


def get_renderer(name: str) -> Renderer:
    """The renderer for format ``name``; ``UsageError`` listing the formats otherwise."""
    spec = RENDERERS.get(name)
    if spec is None:
        raise UsageError(f"unknown output format {name!r}; choose from {', '.join(RENDERERS)}")
    module_name, _, attr = spec.partition(":")
    renderer: Renderer = getattr(importlib.import_module(module_name), attr)()
    return renderer


def render_diff_view(report: Report, source: Manifest, target: Manifest, fmt: str, *,
                     color: bool = False, width: int | None = None) -> str:
    """The diff as a tree: drawn for the terminal (``fmt`` ``table``) or as the ``html`` page."""
    from ckptdiff.graph.diff import diff_tree

    tree = diff_tree(report, source, target)
    if fmt == "html":
        from ckptdiff.render.html import render_diff_html

        return render_diff_html(tree)
    if fmt == "table":
        from ckptdiff.render.tree_diff import render_diff_tree

        return render_diff_tree(tree, color=color, width=width)
    raise UsageError(f"the diff tree is drawn as table or html, not {fmt}")
