"""Plain-text report: what exceptions and logs carry (no colours, no rich)."""

from __future__ import annotations

from ckptdiff.diffing.report import Report
from ckptdiff.render.rows import (
    finding_rows,
    judged_by,
    outlook,
    side_line,
    summary_counts,
    verdict,
    verdict_reason,
)


def render_text(report: Report) -> str:
    """The grouped report as plain lines."""
    lines = [
        f"ckptdiff: {verdict(report)}{judged_by(report)}: {summary_counts(report)}",
        *(f"  {line}" for line in (verdict_reason(report), outlook(report)) if line),
        side_line("  source", report.source.path, report.source.format, report.source.tensors,
                  report.source.container_key),
        side_line("  target", report.target.path, report.target.format, report.target.tensors,
                  report.target.container_key),
    ]
    for row in finding_rows(report.findings):
        count = f" ({row.count} keys)" if row.count > 1 else ""
        lines.append(f"  {row.severity:<7} {row.kind:<10} {row.pattern}{count}")
        if row.kind not in ("missing", "unexpected", "optimizer"):
            lines.append(f"          source {row.source}  target {row.target}")
        if row.note:
            lines.append(f"          {row.note}")
    for rule in report.rules:
        lines.append(f"  suggestion: re.sub({rule.pattern!r}, {rule.replacement!r}, key) "
                     f"fixes {rule.matches} keys")
    return "\n".join(lines)


class TextRenderer:
    """Plain text, one group per line."""

    name = "text"

    def render(self, report: Report, *, color: bool = False, width: int | None = None) -> str:
        """Render ``report``; ``color`` and ``width`` are ignored."""
        return render_text(report) + "\n"
