"""The ``ckptdiff.report/1`` JSON document."""

from __future__ import annotations

from collections.abc import Iterator

from ckptdiff.diffing.report import Report


class JsonRenderer:
    """JSON in the report schema (what CI scripts parse)."""

    name = "json"

    def render(self, report: Report, *, color: bool = False, width: int | None = None) -> str:
        """Render ``report`` as indented JSON."""
        return "".join(self.render_chunks(report))

    def render_chunks(self, report: Report) -> Iterator[str]:
        """The text of ``render(report)`` in pieces (``Report.json_chunks``), to write a large
        report without holding it whole."""
        yield from report.json_chunks()
        yield "\n"
