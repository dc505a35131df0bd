"""A GitHub-flavoured Markdown summary: for a pull-request comment or ``$GITHUB_STEP_SUMMARY``.

The verdict and counts are visible at once; the folded table of findings sits in a collapsible
``<details>`` block so a large diff does not bury the conversation.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from ckptdiff.diffing.report import Report
from ckptdiff.rename.snippet import (
    conversion_lines,
    conversion_snippet,
    python_snippet,
)
from ckptdiff.rename.statements import FRAGMENT_MARK, ambiguous_lines
from ckptdiff.render.grouping import by_rule
from ckptdiff.render.rows import (
    finding_rows,
    judged_by,
    outlook,
    summary_counts,
    transformers_code,
    verdict,
    verdict_reason,
)

# A hidden marker, so a workflow can find and update its earlier comment instead of adding one.
COMMENT_MARKER = "<!-- ckptdiff-report -->"
_SEVERITY_ICON = {"error": "❌ error", "warning": "⚠️ warning", "info": "ℹ️ info"}


def code(text: str) -> str:
    """``text`` as an inline code span that is safe inside a table cell."""
    fence = "``" if "`" in text else "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    body = text.replace("|", "\\|")
    return f"{fence}{pad}{body}{pad}{fence}"


def plain(text: str) -> str:
    """``text`` as table-cell prose: HTML-escaped, pipes escaped, line breaks as ``<br>``."""
    escaped = html.escape(text, quote=False).replace("|", "\\|")
    return "<br>".join(escaped.splitlines())


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _side(label: str, path: str, fmt: str, tensors: int, container_key: str | None) -> str:
    container = f", container {code(container_key)}" if container_key else ""
    return f"**{label}** {code(path)} ({plain(fmt)}, {tensors} tensors{container})"


def _rename_lines(report: Report) -> list[str]:
    lines = ["", "**Suggested renames** (confident pairs; the findings above are unchanged):", ""]
    for rule, members in by_rule(report.suggestions).items():
        best = max(s.confidence for s in members)
        lines.append(f"- {plain(rule)}: {len(members)} keys (confidence {best:.2f})")
    lines.extend(f"- `re.sub({r.pattern!r}, {r.replacement!r}, key)` fixes {r.matches} keys"
                 for r in report.rules)
    if report.rules:
        lines += ["", "<details>", "<summary>as code: <code>revise(state_dict)</code></summary>",
                  "", "```python", *python_snippet(report.rules, report.suggestions), "```", "",
                  "</details>"]
    return lines


def render_section(report: Report, heading: str = "###") -> list[str]:
    """The lines of one report, under a heading of level ``heading``."""
    mark = "✅" if report.compatible else "❌"
    summary = report.summary
    lines = [
        f"{heading} {mark} ckptdiff: {verdict(report)}{plain(judged_by(report))}",
        "",
        *(f"{plain(line)}  " for line in (verdict_reason(report), outlook(report)) if line),
        _side("source", report.source.path, report.source.format, report.source.tensors,
              report.source.container_key) + " →",
        _side("target", report.target.path, report.target.format, report.target.tensors,
              report.target.container_key),
        "",
        f"**{_count(summary['errors'], 'error')}**, {_count(summary['warnings'], 'warning')}, "
        f"{summary['info']} info · {plain(summary_counts(report))}",
    ]
    rows = finding_rows(report.findings)
    if rows:
        lines += ["", "<details>", f"<summary>{len(rows)} finding groups "
                  f"({len(report.findings)} findings)</summary>", "",
                  "| severity | kind | keys | source | target | note |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for row in rows:
            keys = code(row.pattern) + (f" ×{row.count}" if row.count > 1 else "")
            lines.append(f"| {_SEVERITY_ICON[row.severity]} | {plain(row.kind)} | {keys} | "
                         f"{plain(row.source)} | {plain(row.target)} | {plain(row.note or '')} |")
        lines += ["", "</details>"]
    if report.suggestions:
        lines += _rename_lines(report)
    if report.conversions:
        lines += ["", "**Conversions** (stacked, joined or split tensors; the findings above are "
                  "unchanged):", ""]
        lines += [f"- {plain(line)}" for line in conversion_lines(report.conversions)]
        lines += ["", "<details>", "<summary>as code</summary>", "", "```python",
                  *conversion_snippet(report.conversions), "```", "", "</details>"]
    hf_code = transformers_code(report)
    if hf_code:
        lines += ["", "<details>", "<summary>for transformers 5.x <code>from_pretrained</code>"
                  "</summary>", "", "```python", *hf_code, "```", "", "</details>"]
    ambiguous = ambiguous_lines(report.unpaired)
    if ambiguous:
        lines += ["", "**Declined as ambiguous** (names and shapes allow each reading):", ""]
        lines += [_ambiguous_item(line) for line in ambiguous]
    return lines


def _ambiguous_item(line: str) -> str:
    """A list item of the declined section; a paste-ready fragment as literal code (prose
    escaping would change its backslashes and pipes)."""
    if not line.startswith("  "):
        return f"- {plain(line)}"
    prose, mark, fragment = line.strip().partition(FRAGMENT_MARK)
    if not mark:
        return f"  - {plain(prose)}"
    fence = "``" if "`" in fragment else "`"
    return f"  - {plain(prose)} in a `remap --rules` file (rules first): {fence}{fragment}{fence}"


class MarkdownRenderer:
    """Markdown for pull-request comments and GitHub step summaries."""

    name = "markdown"

    def render(self, report: Report, *, color: bool = False, width: int | None = None) -> str:
        """One report: marker, verdict heading, sides, counts, the collapsible table."""
        return "\n".join([COMMENT_MARKER, *render_section(report)]) + "\n"

    def render_many(self, reports: Sequence[Report]) -> str:
        """Several reports (``ckptdiff check``) under one heading that counts the failures."""
        incompatible = sum(not r.compatible for r in reports)
        mark = "❌" if incompatible else "✅"
        lines = [COMMENT_MARKER,
                 f"## {mark} ckptdiff: {len(reports)} checks, {incompatible} incompatible"]
        for report in reports:
            lines += ["", *render_section(report)]
        return "\n".join(lines) + "\n"
