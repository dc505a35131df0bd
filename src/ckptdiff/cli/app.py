"""The ``ckptdiff`` command line: the only place that prints to the terminal and exits.

Exit codes: 0 compatible, 1 incompatible, 2 bad input or usage, 3 unsafe content refused.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TextIO

import typer

from ckptdiff.cli.common import (
    AllowRenameOption,
    ConfigOption,
    DiffFormat,
    ExitZeroOption,
    FailOn,
    FailOnOption,
    IgnoreOption,
    InspectFormat,
    KeyOption,
    OutputOption,
    QuietOption,
    ReportFormatOption,
    VerboseOption,
    fail,
    guarded,
    model_kwargs_of,
    reading,
    terminal,
)
from ckptdiff.cli.remap import remap_command

if TYPE_CHECKING:
    from ckptdiff.ci.policy import Policy

app = typer.Typer(
    name="ckptdiff",
    help="Why a checkpoint will not load into a model, and how to fix it — from headers only.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
    rich_markup_mode=None,
)

def _policy(config: Path | None, fail_on: FailOn | None, ignore: list[str] | None,
            allow_rename: bool | None, exit_zero: bool | None) -> Policy:
    """The config file's policy with the command-line flags applied on top."""
    from ckptdiff.ci.config import load_policy

    return load_policy(config=config).with_overrides(
        fail_on=None if fail_on is None else fail_on.value, ignore=ignore or (),
        allow_rename=allow_rename, exit_zero=exit_zero)


Rendered = str | Iterable[str]  # the whole text, or its pieces in order (a large JSON report)


def _emit(render: Callable[[str, bool, int], Rendered], format_name: str,
          output: Path | None) -> None:
    """Print ``render(format, color, width)``; with ``output`` write it there, print the table."""
    color, width = terminal()
    if output is not None:
        try:
            with output.open("w", encoding="utf-8") as file:
                _write(file, render(format_name, False, width))
        except OSError as exc:
            raise fail(f"error: {output}: {exc.strerror or exc}", 2) from None
        format_name = "table"
    _write(sys.stdout, render(format_name, color, width))


def _write(stream: TextIO, text: Rendered) -> None:
    if isinstance(text, str):
        stream.write(text)
        return
    for piece in text:
        stream.write(piece)


def _unsafe_report(path: str, format: InspectFormat) -> None:
    """``inspect --unsafe-report``: the scanner's view, which exits 0 whatever it finds."""
    from ckptdiff.readers.pickle.unsafe_report import render_unsafe_table, unsafe_report

    if format is InspectFormat.html:
        raise fail("error: --unsafe-report prints --format table or json", 2)
    report = guarded(lambda: unsafe_report(path))
    sys.stdout.write(report.to_json() + "\n" if format is InspectFormat.json
                     else render_unsafe_table(report))


@app.command()
def inspect(
    path: Annotated[str, typer.Argument(help="Checkpoint file, directory or TF prefix.")],
    format: Annotated[InspectFormat, typer.Option(
        "--format", "-f", help="table, json (manifest schema), html (a page with a searchable "
        "tree).")] = InspectFormat.table,
    key: KeyOption = None,
    tree: Annotated[bool, typer.Option(
        "--tree", help="Show the module tree, repeated blocks folded (layers.{0..31} ×32).")
    ] = False,
    depth: Annotated[int | None, typer.Option(
        "--depth", min=1, help="Levels of the tree to show (implies --tree).")] = None,
    key_filter: Annotated[str | None, typer.Option(
        "--filter", metavar="GLOB", help="Only keys matching GLOB (implies --tree).")] = None,
    unsafe: Annotated[bool, typer.Option(
        "--unsafe-report", help="List each pickle's globals and whether each is allowed; exit 0."
    )] = False,
    verbose: VerboseOption = False,
    quiet: QuietOption = False,
) -> None:
    """List every tensor of a checkpoint: key, shape, dtype, device, size, tied weights.

    With --unsafe-report, scan instead: every global each pickle names, its status (allowed,
    data, unsupported, unsafe) and a verdict; nothing is unpickled, and it exits 0.

    \b
    Examples:
      ckptdiff inspect model.safetensors
      ckptdiff inspect ckpt.pth --format json
      ckptdiff inspect model.safetensors --tree --depth 3
      ckptdiff inspect ckpt.pth -f html > ckpt.html
      ckptdiff inspect downloaded.pt --unsafe-report --format json
    """
    from ckptdiff.api import read

    if unsafe:
        _unsafe_report(path, format)
        return

    manifest = reading(lambda: read(path, key), path, quiet, verbose)
    if format is InspectFormat.json:
        sys.stdout.write(manifest.to_json() + "\n")
        return
    if format is InspectFormat.html:
        from ckptdiff.render.html import render_manifest_html

        sys.stdout.write(render_manifest_html(manifest))
        return
    color, width = terminal()
    if tree or depth is not None or key_filter is not None:
        from ckptdiff.render.tree import render_manifest_tree

        sys.stdout.write(render_manifest_tree(manifest, depth=depth, key_glob=key_filter,
                                              color=color, width=width))
        return
    from ckptdiff.render.manifest_view import render_manifest_table

    sys.stdout.write(render_manifest_table(manifest, color=color, width=width))


@app.command()
def diff(
    source: Annotated[str, typer.Argument(
        metavar="SOURCE", help="The checkpoint (or snapshot) to load.")],
    target: Annotated[str, typer.Argument(
        metavar="TARGET",
        help="A checkpoint, a snapshot, or a live model: pkg.module:attr or file.py:attr.")],
    format: ReportFormatOption = DiffFormat.table,
    output: OutputOption = None,
    key: KeyOption = None,
    target_key: Annotated[str | None, typer.Option(
        "--target-key", help="Container entry of TARGET when it is a checkpoint.")] = None,
    model_kwargs: Annotated[str | None, typer.Option(
        "--model-kwargs", help="JSON keyword arguments for a model class or factory.")] = None,
    fail_on: FailOnOption = None,
    ignore: IgnoreOption = None,
    allow_rename: AllowRenameOption = None,
    exit_zero: ExitZeroOption = None,
    config: ConfigOption = None,
    tree: Annotated[bool, typer.Option(
        "--tree", help="Draw the table as the key tree; all-matching branches collapse.")
    ] = False,
    verbose: VerboseOption = False,
    quiet: QuietOption = False,
    explain: Annotated[bool, typer.Option(
        "--explain", help="Add a dry run of the framework's load calls (JSON: explain).")
    ] = False,
    loader: Annotated[str | None, typer.Option(
        "--loader", metavar="NAME",
        help="Judge by this loader, not the default (see the report's verdicts).",
    )] = None,
) -> None:
    """Say whether SOURCE loads into TARGET; exit 1 when it does not.

    Policy settings (fail-on, ignore, allow-missing, allow-unexpected, allow-rename, exit-zero)
    also come from [tool.ckptdiff] in pyproject.toml; flags given here win.

    \b
    Examples:
      ckptdiff diff finetuned.pth mypkg.models:build
      ckptdiff diff old.safetensors new.pth --format json
      ckptdiff diff model.manifest.json mypkg.models:build --allow-rename --ignore 'head.*'
      ckptdiff diff ckpt.pth mypkg.models:build -f markdown -o "$GITHUB_STEP_SUMMARY"
      ckptdiff diff ckpt.pth mypkg.models:build -f junit -o ckptdiff.xml
      ckptdiff diff ckpt.pth mypkg.models:build --explain
      ckptdiff diff ckpt.pth mypkg.models:build --loader load_state_dict-nonstrict
    """
    from ckptdiff.api import diff as run_diff
    from ckptdiff.diffing.compare import resolve_pair
    from ckptdiff.render import get_renderer

    kwargs = guarded(lambda: model_kwargs_of(model_kwargs))
    policy = guarded(lambda: _policy(config, fail_on, ignore, allow_rename, exit_zero))
    # Both manifests stay at hand: the tree and html views show the keys that matched too.
    sides = reading(lambda: resolve_pair(source, target, key=key, target_key=target_key,
                                         model_kwargs=kwargs, loader=loader), source, quiet,
                    verbose)
    # What is left of this one-shot command (findings, plans, text) holds no reference cycle,
    # and nothing built while reading is collected later: where the diff paused the collector
    # (``collector.paused``), each resumption would traverse every object once more.
    gc.disable()
    report = guarded(lambda: policy.apply(run_diff(*sides, loader=loader)))
    if explain:  # the framework's own load rules, replayed on the two manifests
        from dataclasses import replace

        from ckptdiff.loaders.explain import explain_load

        report = replace(report, explain=explain_load(*sides))

    def render(name: str, color: bool, width: int) -> Rendered:
        if name == "html" or (tree and name == "table"):
            from ckptdiff.render import render_diff_view

            text = render_diff_view(report, *sides, name, color=color, width=width)
        elif name == "json":  # written piece by piece: 100,000 findings are 75 MB of text
            from ckptdiff.render.json import JsonRenderer

            return JsonRenderer().render_chunks(report)
        else:
            text = get_renderer(name).render(report, color=color, width=width)
        if report.explain and name in ("table", "text", "markdown"):
            from ckptdiff.loaders.explain import render_explain

            text += render_explain(report.explain, markdown=name == "markdown")
        return text

    _emit(render, format.value, output)
    if policy.exit_code(report):
        raise typer.Exit(1)


@app.command()
def check(
    format: ReportFormatOption = DiffFormat.table,
    output: OutputOption = None,
    update: Annotated[bool, typer.Option(
        "--update", help="Rewrite the snapshots from their models instead of checking.")] = False,
    fail_on: FailOnOption = None,
    ignore: IgnoreOption = None,
    allow_rename: AllowRenameOption = None,
    exit_zero: ExitZeroOption = None,
    config: ConfigOption = None,
) -> None:
    """Diff every snapshot listed in pyproject.toml against its model; exit 1 when one fails.

    The pre-commit hook (ckptdiff-snapshots) and CI run this. Configure it once:

    \b
      [[tool.ckptdiff.snapshots]]
      snapshot = "snapshots/model.manifest.json"
      model = "mypkg.models:build"

    \b
    Examples:
      ckptdiff check
      ckptdiff check --format github
      ckptdiff check -f markdown -o "$GITHUB_STEP_SUMMARY"
      ckptdiff check --update
    """
    from ckptdiff.ci.check import render_reports, run_checks, update_snapshots

    policy = guarded(lambda: _policy(config, fail_on, ignore, allow_rename, exit_zero))
    if update:
        for path, count, changed in guarded(lambda: update_snapshots(policy)):
            sys.stderr.write(f"{'updated' if changed else 'unchanged'}: {path} "
                             f"({count} tensors)\n")
        return
    reports = guarded(lambda: run_checks(policy))
    _emit(lambda name, color, width: render_reports(name, reports, color=color, width=width),
          format.value, output)
    failing = [r for r in reports if policy.fails(r)]
    if failing:
        sys.stderr.write(f"ckptdiff: {len(failing)} of {len(reports)} snapshots fail; "
                         "if the change is intended, run 'ckptdiff check --update'\n")
        if not policy.exit_zero:
            raise typer.Exit(1)


@app.command()
def snapshot(
    target: Annotated[str, typer.Argument(help="A live model spec or a checkpoint.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Manifest JSON to write.")],
    key: KeyOption = None,
    model_kwargs: Annotated[str | None, typer.Option(
        "--model-kwargs", help="JSON keyword arguments for a model class or factory.")] = None,
) -> None:
    """Write a deterministic manifest of a model or checkpoint, to commit and diff against.

    The manifest holds keys, shapes and dtypes, never weight values. It is a valid SOURCE or
    TARGET of diff; ckptdiff check --update writes the snapshots listed in pyproject.toml.

    \b
    Examples:
      ckptdiff snapshot mypkg.models:build -o model.manifest.json
      ckptdiff snapshot models/net.py:Net --model-kwargs '{"depth": 4}' -o net.manifest.json
      ckptdiff diff released.safetensors model.manifest.json
    """
    from ckptdiff.api import snapshot as take_snapshot

    kwargs = guarded(lambda: model_kwargs_of(model_kwargs))
    manifest = guarded(lambda: take_snapshot(target, key=key, model_kwargs=kwargs))
    try:
        output.write_text(manifest.to_json() + "\n", encoding="utf-8")
    except OSError as exc:
        raise fail(f"error: {output}: {exc.strerror or exc}", 2) from None
    sys.stderr.write(f"wrote {output} ({len(manifest.tensors)} tensors)\n")


@app.command()
def formats() -> None:
    """List the readers, their extensions, and whether their optional dependency is installed.

    \b
    Example:
      ckptdiff formats
    """
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from ckptdiff.readers import registered

    table = Table(show_edge=False, pad_edge=False, header_style="bold")
    for column in ("format", "extensions", "installed", "description"):
        table.add_column(column)
    for entry in registered():
        reader = entry.reader
        installed = "yes" if entry.available else f"no: pip install 'ckptdiff[{reader.extra}]'"
        origin = "" if entry.origin == "builtin" else f" [{entry.origin}]"
        # Text cells: plugin names and descriptions are data, never rich markup.
        table.add_row(Text(reader.name), Text(" ".join(reader.extensions) or "(directory)"),
                      Text(installed), Text(reader.description + origin))
    Console(highlight=False, width=None if sys.stdout.isatty() else 160).print(table)


app.command("remap")(remap_command)


def main() -> None:
    """Console-script entry point: no traceback ever reaches the user."""
    import warnings

    def one_line(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                 file: Any = None, line: str | None = None) -> None:
        text = str(message)
        sys.stderr.write(("" if text.startswith("ckptdiff:") else "ckptdiff: warning: ")
                         + text + "\n")

    warnings.showwarning = one_line
    try:
        app()
    except SystemExit:
        raise
    except Exception as exc:  # a bug in ckptdiff, not the user's fault
        if os.environ.get("CKPTDIFF_DEBUG"):
            raise
        sys.stderr.write(f"ckptdiff: internal error: {type(exc).__name__}: {exc} "
                         "(set CKPTDIFF_DEBUG=1 for the traceback and please report it)\n")
        sys.exit(2)
