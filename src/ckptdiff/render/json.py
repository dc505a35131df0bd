"""The ``ckptdiff.report/1`` JSON document."""

from __future__ import annotations

from ckptdiff.diffing.report import Report


class JsonRenderer:
    """JSON in the report schema (what CI scripts parse)."""

    name = "json"

    def render(self, report: Report, *, color: bool = False, width: int | None = None) -> str:
        """Render ``report`` as indented JSON."""
        return report.to_json() + "\n"
