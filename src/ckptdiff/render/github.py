"""GitHub Actions workflow commands: one annotation per group of findings.

Each line is ``::error title=...::message`` (``::warning`` and ``::notice`` for lower severities).
Escaping follows the workflow-command rules of ``@actions/core``: in the message ``%``, ``\\r``
and ``\\n`` are percent-encoded; in properties ``:`` and ``,`` are encoded as well, since they
delimit properties.
"""

from __future__ import annotations

import re

from ckptdiff.diffing.report import Report, Suggestion
from ckptdiff.render.grouping import by_rule
from ckptdiff.render.rows import Row, finding_rows, summary_counts, verdict

COMMANDS = {"error": "error", "warning": "warning", "info": "notice"}
# A model spec (pkg.module:attr, file.py:attr) or a label such as <Net object> is no file.
_NOT_A_FILE = re.compile(
    r"^(<.*>|[\w.]+:[A-Za-z_][\w.]*|.+\.py:[A-Za-z_][\w.]*|[A-Za-z][\w+.-]*://.*)$")


def escape_data(text: str) -> str:
    """Escape a workflow command's message."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Escape a workflow command's property value."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def workflow_command(command: str, message: str, **properties: str | None) -> str:
    """``::command key=value,...::message`` with every part escaped; ``None`` values left out."""
    pairs = ",".join(f"{name}={escape_property(value)}"
                     for name, value in properties.items() if value is not None)
    return f"::{command}{' ' + pairs if pairs else ''}::{escape_data(message)}"


def annotation_file(path: str) -> str | None:
    """``path`` when it names a file relative to the repository; annotations then point at it."""
    if not path or _NOT_A_FILE.match(path) or path.startswith(("/", "\\")):
        return None
    if re.match(r"^[A-Za-z]:[\\/]", path):  # a Windows drive path is absolute too
        return None
    return path


def explain_row(row: Row) -> str:
    """One sentence on what is wrong with the keys of ``row``."""
    keys = f"{row.pattern} ({row.count} keys)" if row.count > 1 else row.pattern
    if row.kind == "missing":
        return f"{keys}: the model expects {row.target}; the checkpoint does not have it"
    if row.kind in ("unexpected", "optimizer") and row.source != "—":
        return f"{keys}: the checkpoint has {row.source}; the model does not expect it"
    if row.kind == "optimizer":
        return f"{keys}: the saved optimizer state does not fit the model"
    if row.kind == "unregistered":
        return f"{keys}: the model holds {row.target} that it never saves or loads"
    if row.kind == "trainable":
        return f"{keys}: trainable at save time and in the model differ"
    return f"{keys}: {row.kind} differs: source {row.source}, target {row.target}"


def _message(row: Row, report: Report) -> str:
    lines = [explain_row(row)]
    if row.note:
        lines.append(row.note)
    lines.append(f"source {report.source.path} -> target {report.target.path}")
    return "\n".join(lines)


def _rename_lines(suggestions: tuple[Suggestion, ...], file: str | None) -> list[str]:
    return [
        workflow_command("notice", f"{rule}: {len(members)} keys (confidence "
                         f"{max(s.confidence for s in members):.2f}); ckptdiff remap applies it",
                         file=file, title="ckptdiff suggested rename")
        for rule, members in by_rule(suggestions).items()
    ]


class GithubRenderer:
    """Annotations for GitHub Actions: errors fail the check visibly on the pull request."""

    name = "github"

    def render(self, report: Report, *, color: bool = False, width: int | None = None) -> str:
        """One workflow command per finding group, the suggestions, then a summary notice."""
        file = annotation_file(report.source.path)
        lines = [
            workflow_command(COMMANDS[row.severity], _message(row, report), file=file,
                             title=f"ckptdiff {row.kind}: {row.pattern}")
            for row in finding_rows(report.findings)
        ]
        lines.extend(_rename_lines(report.suggestions, file))
        lines.append(workflow_command(
            "notice", f"{verdict(report)}: {summary_counts(report)} "
            f"(source {report.source.path} -> target {report.target.path})", title="ckptdiff"))
        return "\n".join(lines) + "\n"
