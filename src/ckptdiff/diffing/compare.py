"""Diff any source against any target: resolve both to manifests, match them, drop ignored keys.

The one composition the API, ``ckptdiff check`` and the pytest helper share, kept below them so
that none of them reaches up into another.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from ckptdiff.diffing.match import diff_manifests
from ckptdiff.diffing.report import Report
from ckptdiff.targets.resolve import Source, resolve


def diff(
    source: Source,
    target: Source,
    *,
    key: str | None = None,
    target_key: str | None = None,
    model_kwargs: Mapping[str, Any] | None = None,
    ignore: Iterable[str] = (),
) -> Report:
    """Why ``source`` (a checkpoint) would or would not load into ``target``.

    ``ignore`` holds glob patterns of keys whose findings are dropped (e.g. ``classifier.*``).
    """
    stored = resolve(source, key=key)
    report = diff_manifests(
        stored, resolve(target, key=target_key, model_kwargs=model_kwargs, against=stored))
    return apply_ignore(report, ignore)


def apply_ignore(report: Report, patterns: Iterable[str]) -> Report:
    """The report without findings (and suggestions) whose key matches one of ``patterns``."""
    globs = tuple(patterns)
    if not globs:
        return report

    def ignored(key: str) -> bool:
        return any(fnmatch.fnmatchcase(key, glob) for glob in globs)

    return replace(
        report,
        findings=tuple(f for f in report.findings if not ignored(f.key)),
        suggestions=tuple(s for s in report.suggestions
                          if not (ignored(s.source_key) or ignored(s.target_key))),
        unpaired=tuple(u for u in report.unpaired
                       if not ignored(u.source_key or u.target_key or "")),
    )
