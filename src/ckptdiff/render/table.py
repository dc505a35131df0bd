"""The terminal report: a verdict line and a rich table of folded key groups."""

from __future__ import annotations

import io

from ckptdiff.diffing.report import Report
from ckptdiff.rename.snippet import (
    conversion_lines,
    conversion_snippet,
    python_snippet,
    unpaired_lines,
)
from ckptdiff.rename.statements import ambiguous_lines
from ckptdiff.render.grouping import by_rule, folded_pairs
from ckptdiff.render.rows import (
    finding_rows,
    judged_by,
    outlook,
    side_line,
    summary_counts,
    transformers_code,
    verdict,
    verdict_reason,
)

_SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


class TableRenderer:
    """Human-readable report for terminals (rich)."""

    name = "table"

    def render(self, report: Report, *, color: bool = False, width: int | None = None) -> str:
        """Render ``report``; ANSI colours only when ``color``."""
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        buffer = io.StringIO()
        console = Console(file=buffer, force_terminal=color, no_color=not color,
                          width=width or 120, highlight=False, soft_wrap=False)
        mark, style = ("✓", "bold green") if report.compatible else ("✗", "bold red")
        console.print(Text.assemble((f"{mark} {verdict(report)}", style), judged_by(report),
                                    "  ", summary_counts(report)))
        for line in (verdict_reason(report), outlook(report)):
            if line:
                console.print(f"  {line}", markup=False)
        for label, side in (("source", report.source), ("target", report.target)):
            console.print(side_line(f"  {label}", side.path, side.format, side.tensors,
                                    side.container_key), style="dim")
        rows = finding_rows(report.findings)
        if rows:
            table = Table(show_edge=False, pad_edge=False, header_style="bold")
            table.add_column("severity")
            table.add_column("kind")
            table.add_column("keys", overflow="fold")
            table.add_column("source", overflow="fold")
            table.add_column("target", overflow="fold")
            for row in rows:
                keys = Text(row.pattern)
                if row.count > 1:
                    keys.append(f"  ×{row.count}", style="dim")
                if row.note:
                    keys.append(f"\n{row.note}", style="dim italic")
                table.add_row(Text(row.severity, style=_SEVERITY_STYLE[row.severity]), row.kind,
                              keys, row.source, row.target)
            console.print(table)
        if report.suggestions:
            console.print("\nSuggested renames (confident pairs; findings above are unchanged):",
                          style="bold")
            for rule_text, members in by_rule(report.suggestions).items():
                best = max(s.confidence for s in members)
                console.print(f"  {rule_text}: {len(members)} keys (confidence {best:.2f})",
                              markup=False)
                for line in folded_pairs(members):
                    console.print(f"      {line}", style="dim", markup=False)
            if report.rules:
                console.print("\nAs code (revise_keys for mmengine's load_checkpoint, or paste "
                              "revise() into your loading code):", style="bold")
                for line in python_snippet(report.rules, report.suggestions):
                    # Code is pasted: a wrapped line would be a syntax error.
                    console.print(f"    {line}", style="green", markup=False, soft_wrap=True)
        if report.conversions:
            console.print("\nConversions (stacked, joined or split tensors; findings above are "
                          "unchanged):", style="bold")
            for line in conversion_lines(report.conversions):
                console.print(f"  {line}", markup=False)
            console.print("\nAs code (or `ckptdiff remap` writes the converted file):",
                          style="bold")
            for line in conversion_snippet(report.conversions):
                console.print(f"    {line}", style="green", markup=False, soft_wrap=True)
        hf_code = transformers_code(report)
        if hf_code:
            console.print("\nFor transformers 5.x from_pretrained (its own pattern language, "
                          "checked on every key):", style="bold")
            for line in hf_code:
                console.print(f"    {line}", style="green", markup=False, soft_wrap=True)
        ambiguous = ambiguous_lines(report.unpaired)
        if ambiguous:
            console.print("\nDeclined as ambiguous (names and shapes allow each reading):",
                          style="bold")
            for line in ambiguous:
                console.print(f"  {line}", markup=False, soft_wrap=True)
        others = tuple(u for u in report.unpaired if len(u.readings) < 2)
        if others:
            console.print("\nLeft unpaired on purpose:", style="bold")
            for line in unpaired_lines(others):
                console.print(f"  {line}", style="dim", markup=False)
        return buffer.getvalue()

