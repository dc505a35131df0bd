"""One renderer per output format behind one interface; renderers only ever see a Report."""

from __future__ import annotations

import importlib
from typing import Protocol

from ckptdiff.errors import UsageError
from ckptdiff.report import Report

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
