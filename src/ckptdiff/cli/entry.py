"""The console-script entry point, with a fast lane for plain ``ckptdiff inspect``.

``inspect PATH [--format json|table] [--key K] [--quiet]`` is what scripts and CI run most, and
building the typer app (importing it, inspecting every command's signature) costs more than
reading a checkpoint header. Those exact invocations are served here with the same read, the
same renderers and the same errors; anything else, ``--help`` included, goes to
:mod:`ckptdiff.cli.app`.
"""

from __future__ import annotations

import gc
import os
import sys
from typing import NamedTuple


class InspectCall(NamedTuple):
    """A plain ``inspect`` invocation the fast lane can serve."""

    path: str
    format: str = "table"
    key: str | None = None
    quiet: bool = False


def parse_plain_inspect(argv: list[str]) -> InspectCall | None:
    """The call ``argv`` makes, or ``None`` when it is anything but a plain inspect."""
    if not argv or argv[0] != "inspect":
        return None
    path: str | None = None
    options: dict[str, str] = {}
    quiet = False
    tokens = iter(argv[1:])
    for token in tokens:
        name, eq, inline = token.partition("=")
        if name in ("--format", "-f", "--key") and not (name == "-f" and eq):
            value = inline if eq else next(tokens, None)
            option = "key" if name == "--key" else "format"
            if value is None or option in options:
                return None
            options[option] = value
        elif token in ("--quiet", "-q"):
            quiet = True
        elif token.startswith("-") or path is not None:
            return None
        else:
            path = token
    if path is None or options.get("format", "table") not in ("table", "json"):
        return None
    return InspectCall(path, options.get("format", "table"), options.get("key"), quiet)


def run_inspect(call: InspectCall) -> int:
    """Serve ``call`` as ``ckptdiff.cli.app.inspect`` would; returns the exit code."""
    from ckptdiff.api import read
    from ckptdiff.errors import CkptdiffError
    from ckptdiff.sources import progress

    try:
        with progress.reporting(call.path,
                                enabled=not call.quiet and progress.stderr_is_terminal()):
            manifest = read(call.path, call.key)
    except CkptdiffError as exc:
        sys.stderr.write(f"ckptdiff: error: {exc}\n")
        return exc.exit_code
    if call.format == "json":
        sys.stdout.write(manifest.to_json() + "\n")
        return 0
    import shutil

    from ckptdiff.render.manifest_view import render_manifest_table

    color = sys.stdout.isatty() and "NO_COLOR" not in os.environ
    width = shutil.get_terminal_size((120, 24)).columns
    sys.stdout.write(render_manifest_table(manifest, color=color, width=width))
    return 0


def main() -> None:
    """``ckptdiff``: the fast lane when it applies, else the full typer CLI."""
    # Reading or diffing 100,000-key checkpoints builds a million small acyclic objects: at the
    # default threshold (700) the cycle collector rescans them over and over, a third of the run.
    gc.set_threshold(50_000, 20, 20)
    call = parse_plain_inspect(sys.argv[1:])
    if call is not None and not os.environ.get("CKPTDIFF_NO_FAST_PATH"):
        try:
            code = run_inspect(call)
            sys.stdout.flush()
        except KeyboardInterrupt:
            sys.stderr.write("ckptdiff: interrupted\n")
            code = 130
        except BrokenPipeError:
            code = 0
        raise SystemExit(code)
    from ckptdiff.cli.app import main as full_main

    full_main()
