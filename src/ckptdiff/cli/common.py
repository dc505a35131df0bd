"""What every command of the command line shares: one-line errors, exit codes, progress, the
option types and enums.

Exit codes: 0 compatible, 1 incompatible, 2 bad input or usage, 3 unsafe content refused.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from ckptdiff.errors import CkptdiffError, UsageError

T = TypeVar("T")


class InspectFormat(str, Enum):
    """Output formats of ``inspect``."""

    table = "table"
    json = "json"
    html = "html"


class DiffFormat(str, Enum):
    """Output formats of ``diff`` and ``check``."""

    table = "table"
    json = "json"
    text = "text"
    markdown = "markdown"
    github = "github"
    junit = "junit"
    html = "html"


class FailOn(str, Enum):
    """The lowest severity that makes ``diff`` exit 1."""

    error = "error"
    warning = "warning"


def fail(message: str, code: int) -> typer.Exit:
    """Write ``message`` as one line on stderr; the exit to raise with ``code``."""
    sys.stderr.write(f"ckptdiff: {message}\n")
    return typer.Exit(code)


def guarded(action: Callable[[], T]) -> T:
    """Run ``action``; a CkptdiffError becomes one line on stderr and its exit code."""
    try:
        return action()
    except CkptdiffError as exc:
        raise fail(f"error: {exc}", exc.exit_code) from None
    except KeyboardInterrupt:
        raise fail("interrupted", 130) from None


def terminal() -> tuple[bool, int]:
    """Whether stdout takes colour, and the terminal's width."""
    color = sys.stdout.isatty() and "NO_COLOR" not in os.environ
    return color, shutil.get_terminal_size((120, 24)).columns


def reading(action: Callable[[], T], label: str, quiet: bool, verbose: bool) -> T:
    """Run a read under a progress bar (stderr a terminal, read slower than a second, no
    --quiet); with --verbose, say what each manifest read cost."""
    import time

    from ckptdiff.sources import progress

    start = time.perf_counter()
    with progress.reporting(label, enabled=not quiet and progress.stderr_is_terminal()):
        result = guarded(action)
    if verbose:
        seconds = time.perf_counter() - start
        for line in progress.read_summaries(result, seconds):
            sys.stderr.write(f"ckptdiff: {line}\n")
    return result


def model_kwargs_of(text: str | None) -> dict[str, Any]:
    """The ``--model-kwargs`` JSON object as a dict (a UsageError when it is not one)."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"--model-kwargs is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise UsageError("--model-kwargs must be a JSON object, e.g. '{\"num_labels\": 3}'")
    return value


KeyOption = Annotated[str | None, typer.Option(
    "--key", help="Container entry holding the tensors (state_dict, ema, model, a.b path).")]
VerboseOption = Annotated[bool, typer.Option(
    "--verbose", "-v", help="Say on stderr what each read cost: bytes read, seconds.")]
QuietOption = Annotated[bool, typer.Option(
    "--quiet", "-q", help="No progress bar on stderr (it only shows on a terminal anyway).")]

# Report options shared by `diff` and `check`. Policy flags default to None: unset means
# "as [tool.ckptdiff] in pyproject.toml says", and a flag that is given wins over the file.
ReportFormatOption = Annotated[DiffFormat, typer.Option(
    "--format", "-f", help="markdown: PR comments; github: annotations; junit: CI test reports.")]
OutputOption = Annotated[Path | None, typer.Option(
    "--output", "-o", metavar="FILE", dir_okay=False,
    help="Write the report in --format to FILE; the terminal still shows the table.")]
FailOnOption = Annotated[FailOn | None, typer.Option(
    "--fail-on", help="Lowest severity that exits 1 (default: error, or fail-on in config).")]
IgnoreOption = Annotated[list[str] | None, typer.Option(
    "--ignore", metavar="GLOB",
    help="Drop findings of keys matching GLOB (repeatable; adds to ignore in config).")]
AllowRenameOption = Annotated[bool | None, typer.Option(
    "--allow-rename/--no-allow-rename",
    help="Confident renames pass: their findings become info with a note.")]
ExitZeroOption = Annotated[bool | None, typer.Option(
    "--exit-zero/--no-exit-zero", help="Exit 0 even when incompatible.")]
ConfigOption = Annotated[Path | None, typer.Option(
    "--config", metavar="PYPROJECT", dir_okay=False,
    help="Settings file (default: nearest pyproject.toml with tool.ckptdiff).")]
