"""``ckptdiff check``: diff every committed snapshot of ``[tool.ckptdiff]`` against its model.

This is what the pre-commit hook and the CI workflow run. Paths and model specs resolve from the
directory of the ``pyproject.toml`` the snapshots are listed in, wherever the command starts.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from ckptdiff.ci.policy import Policy, SnapshotCheck
from ckptdiff.diffing.report import Report
from ckptdiff.errors import UsageError


@contextmanager
def _working_directory(path: Path | None) -> Iterator[None]:
    """Run in ``path`` (the config's directory), so relative paths and imports mean the same."""
    previous = Path.cwd()
    if path is not None:
        os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def _configured(policy: Policy) -> tuple[SnapshotCheck, ...]:
    if not policy.snapshots:
        raise UsageError("no snapshots configured: add [[tool.ckptdiff.snapshots]] entries "
                         "(snapshot = \"...\", model = \"pkg.module:build\") to pyproject.toml")
    return policy.snapshots


def run_checks(policy: Policy) -> list[Report]:
    """The policy-applied report of each configured snapshot (source) against its model.

    The report's source path is the snapshot file as configured, so annotations point at it.
    """
    from ckptdiff.diffing.compare import diff

    reports = []
    with _working_directory(policy.root):
        for check in _configured(policy):
            if not Path(check.snapshot).is_file():
                raise UsageError(f"{check.snapshot}: no such snapshot; write it with "
                                 "'ckptdiff check --update'")
            report = policy.apply(diff(check.snapshot, check.model,
                                       model_kwargs=check.model_kwargs))
            reports.append(replace(report, source=replace(report.source, path=check.snapshot)))
    return reports


def update_snapshots(policy: Policy) -> list[tuple[str, int, bool]]:
    """Rewrite every configured snapshot from its model: (path, tensors, whether it changed)."""
    from ckptdiff.targets.resolve import snapshot

    written = []
    with _working_directory(policy.root):
        for check in _configured(policy):
            manifest = snapshot(check.model, model_kwargs=check.model_kwargs)
            path = Path(check.snapshot)
            text = manifest.to_json() + "\n"
            try:
                changed = not path.is_file() or path.read_text(encoding="utf-8") != text
                if changed:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text(text, encoding="utf-8")
            except OSError as exc:
                raise UsageError(f"{check.snapshot}: {exc.strerror or exc}") from None
            written.append((check.snapshot, len(manifest.tensors), changed))
    return written


def render_reports(format_name: str, reports: Sequence[Report], *, color: bool = False,
                   width: int | None = None) -> str:
    """Several reports in one output: a renderer's ``render_many`` when it has one.

    JSON becomes an array of report documents; other formats are the reports one after another.
    """
    from ckptdiff.render import get_renderer

    if format_name == "json":
        return json.dumps([r.to_dict() for r in reports], indent=2, ensure_ascii=False) + "\n"
    renderer = get_renderer(format_name)
    render_many = getattr(renderer, "render_many", None)
    if render_many is not None:
        return str(render_many(reports))
    return "".join(renderer.render(r, color=color, width=width) for r in reports)
