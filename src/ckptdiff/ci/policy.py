"""The pass/fail policy of a diff: what fails, what is ignored, which differences are allowed.

Settings come from ``[tool.ckptdiff]`` in the nearest ``pyproject.toml`` (see
:mod:`ckptdiff.ci.config`) and from command-line flags or keyword arguments, which win.
A policy never hides a finding it allows: the finding becomes ``info`` with a note saying why.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ckptdiff.diffing.report import SEVERITIES, Finding, Report

DEFAULT_RENAME_CONFIDENCE = 0.9
# Kinds that allow-missing covers: a missing key, or one whose shape changed, is reinitialised.
REINITIALISED_KINDS = ("missing", "shape")


@dataclass(frozen=True)
class SnapshotCheck:
    """One ``[[tool.ckptdiff.snapshots]]`` entry: a committed snapshot and the model it guards."""

    snapshot: str
    model: str
    model_kwargs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Policy:
    """Everything that decides whether a report passes.

    ``ignore`` drops findings; ``allow_missing`` (missing or reshaped keys the model may
    reinitialise), ``allow_unexpected`` and confident renames (``allow_rename``) keep them as
    ``info`` with a note. ``root`` is the directory of the config file the policy came from.
    """

    fail_on: str = "error"
    ignore: tuple[str, ...] = ()
    allow_missing: tuple[str, ...] = ()
    allow_unexpected: tuple[str, ...] = ()
    allow_rename: bool = False
    rename_confidence: float = DEFAULT_RENAME_CONFIDENCE
    exit_zero: bool = False
    snapshots: tuple[SnapshotCheck, ...] = ()
    root: Path | None = None

    def with_overrides(
        self,
        *,
        fail_on: str | None = None,
        ignore: Iterable[str] = (),
        allow_missing: Iterable[str] = (),
        allow_unexpected: Iterable[str] = (),
        allow_rename: bool | None = None,
        exit_zero: bool | None = None,
    ) -> Policy:
        """This policy with flags applied: settings given win, globs are added to the lists."""
        return replace(
            self,
            fail_on=self.fail_on if fail_on is None else fail_on,
            ignore=self.ignore + tuple(ignore),
            allow_missing=self.allow_missing + tuple(allow_missing),
            allow_unexpected=self.allow_unexpected + tuple(allow_unexpected),
            allow_rename=self.allow_rename if allow_rename is None else allow_rename,
            exit_zero=self.exit_zero if exit_zero is None else exit_zero,
        )

    def apply(self, report: Report) -> Report:
        """``report`` with ignored findings dropped and allowed ones turned into ``info``."""
        from ckptdiff.diffing.compare import accept_keys, apply_ignore

        report = apply_ignore(report, self.ignore)
        renames = self._confident_renames(report) if self.allow_rename else {}
        if not (renames or self.allow_missing or self.allow_unexpected):
            return accept_keys(report, set(), "its allow settings")  # nothing to allow
        judged = tuple(self._judge(f, renames) for f in report.findings)
        allowed = {new.key for old, new in zip(report.findings, judged, strict=True)
                   if new is not old}
        return accept_keys(replace(report, findings=judged), allowed, "its allow settings")

    def fails(self, report: Report) -> bool:
        """True when ``report`` (already applied) has findings at or above ``fail_on``."""
        levels = SEVERITIES[: SEVERITIES.index(self.fail_on) + 1]  # (as ``Report.failing``)
        return any(f.severity in levels for f in report.findings)

    def exit_code(self, report: Report) -> int:
        """What the command line returns for ``report``: 1 when it fails, unless ``exit_zero``."""
        return 1 if self.fails(report) and not self.exit_zero else 0

    def _confident_renames(self, report: Report) -> dict[tuple[str, str], str]:
        """(kind, key) → note, for both keys of every suggestion at or above the threshold."""
        notes: dict[tuple[str, str], str] = {}
        for suggestion in report.suggestions:
            if suggestion.confidence < self.rename_confidence:
                continue
            how = f"{suggestion.rule}, confidence {suggestion.confidence:.2f}"
            if suggestion.transform:
                how += f", {suggestion.transform}"
            note = f"renamed ({how}): allowed by allow-rename"
            notes[("unexpected", suggestion.source_key)] = note
            notes[("missing", suggestion.target_key)] = note
        return notes

    def _judge(self, finding: Finding, renames: Mapping[tuple[str, str], str]) -> Finding:
        if finding.severity != "error":
            return finding
        if finding.kind in REINITIALISED_KINDS:
            setting, globs = "allow-missing", self.allow_missing
        elif finding.kind == "unexpected":
            setting, globs = "allow-unexpected", self.allow_unexpected
        else:
            setting, globs = "", ()
        glob = next((g for g in globs if fnmatch.fnmatchcase(finding.key, g)), None)
        if glob is not None:
            return _allowed(finding, f"allowed by policy ({setting} {glob!r})")
        rename = renames.get((finding.kind, finding.key))
        return finding if rename is None else _allowed(finding, rename)


def _allowed(finding: Finding, why: str) -> Finding:
    note = why if finding.note is None else f"{why}; {finding.note}"
    return replace(finding, severity="info", note=note)
