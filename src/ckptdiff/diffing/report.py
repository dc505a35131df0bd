"""The result of a diff: findings, rename suggestions and rules, as frozen dataclasses.

``Report.to_dict`` produces the ``ckptdiff.report/1`` JSON document of the contract.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from operator import attrgetter
from typing import Any

from ckptdiff import collector, jsonlines
from ckptdiff.diffing.report_rows import finding_rows, suggestion_rows
from ckptdiff.errors import IncompatibleError
from ckptdiff.loaders.statement import LoadStatement
from ckptdiff.loaders.verdict import Verdict
from ckptdiff.manifest import Manifest, TensorInfo
from ckptdiff.rename.results import Conversion, ConversionOp, Rule, Suggestion, Unpaired

# The records a Report is made of, importable from here whichever part defines them.
__all__ = ["BASE_KINDS", "REPORT_SCHEMA", "SEVERITIES", "Conversion", "ConversionOp", "Finding",
           "FixOutlook", "LoadStatement", "Report", "Rule", "Side", "Suggestion", "TensorSide",
           "Unpaired", "Verdict"]

REPORT_SCHEMA = "ckptdiff.report/1"
SEVERITIES = ("error", "warning", "info")
# Kinds always present in ``summary`` (the contract's required counts); later kinds are added.
BASE_KINDS = ("missing", "unexpected", "shape", "dtype", "device")
_ROW_LISTS = ("findings", "suggestions", "rules", "unpaired", "explain", "conversions",
              "verdicts")


@dataclass(frozen=True, slots=True)
class TensorSide:
    """What one side says about a key: shape, dtype, device."""

    shape: tuple[int, ...]
    dtype: str
    device: str | None

    @classmethod
    def of(cls, info: TensorInfo | None) -> TensorSide | None:
        """The side of ``info``, or ``None`` when that side lacks the key."""
        if info is None:
            return None
        if cls is not TensorSide:
            return cls(info.shape, info.dtype, info.device)
        return _shared_side(info.shape, info.dtype, info.device)

    def to_dict(self) -> dict[str, Any]:
        """JSON object of the report schema's ``tensor``."""
        return {"shape": list(self.shape), "dtype": self.dtype, "device": self.device}


@lru_cache(maxsize=4096)
def _shared_side(shape: tuple[int, ...], dtype: str, device: str | None) -> TensorSide:
    """One frozen side per distinct value: a 100,000-key diff's findings share a few, not one
    object each (less memory; the JSON rows encode each once)."""
    return TensorSide(shape, dtype, device)


@dataclass(frozen=True, slots=True)
class Finding:
    """One difference between source and target for one key."""

    kind: str
    key: str
    severity: str
    source: TensorSide | None
    target: TensorSide | None
    note: str | None = None
    tied_to: str | None = None
    # The names users know for ``key`` (source, target) where the judging loader's key space
    # differs from them (Keras layer names beside saving paths); None where they do not.
    names: tuple[str | None, str | None] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON object of the report schema's finding."""
        out: dict[str, Any] = {
            "kind": self.kind,
            "key": self.key,
            "severity": self.severity,
            "source": None if self.source is None else self.source.to_dict(),
            "target": None if self.target is None else self.target.to_dict(),
            "note": self.note,
            "tied_to": self.tied_to,
        }
        if self.names is not None:
            out["names"] = {"source": self.names[0], "target": self.names[1]}
        return out


@dataclass(frozen=True)
class Side:
    """Which checkpoint or model one side of the diff was."""

    path: str
    format: str
    tensors: int
    container_key: str | None

    @classmethod
    def of(cls, manifest: Manifest) -> Side:
        """Describe ``manifest``."""
        return cls(manifest.path, manifest.format, len(manifest.tensors), manifest.container_key)

    def to_dict(self) -> dict[str, Any]:
        """JSON object of the report schema's side."""
        return {"path": self.path, "format": self.format, "tensors": self.tensors,
                "container_key": self.container_key}


@dataclass(frozen=True)
class FixOutlook:
    """What remains once the confident fix (``fix``: the rules, pairing ``renamed`` keys) is
    applied: whether the judging loader then loads, and the errors still left."""

    fix: str
    renamed: int
    loads: bool
    remaining: tuple[Finding, ...]
    converted: int = 0  # the conversions applied after the rules (their keys are fixed too)

    def to_dict(self) -> dict[str, Any]:
        """JSON object of the report schema's ``after_fix``."""
        return {"fix": self.fix, "renamed": self.renamed, "converted": self.converted,
                "loads": self.loads, "remaining": [f.to_dict() for f in self.remaining]}


@dataclass(frozen=True)
class Report:
    """Everything a diff found. ``compatible`` is the judging loader's verdict (the first of
    ``verdicts``); without verdicts, true when no finding is an error."""

    source: Side
    target: Side
    matched: int
    findings: tuple[Finding, ...]
    suggestions: tuple[Suggestion, ...] = ()
    rules: tuple[Rule, ...] = ()
    # Keys left unpaired on purpose by the rename engine, with the reason (JSON ``unpaired``).
    unpaired: tuple[Unpaired, ...] = ()
    # What the frameworks' load calls would do (``diff --explain``; JSON ``explain`` when set).
    explain: tuple[LoadStatement, ...] = ()
    # Keys whose shapes agree (``matched`` counts them): renderers that list passing checks
    # (JUnit) need them; not part of the JSON document.
    matched_keys: tuple[str, ...] = ()
    # Stacked, fused and split tensors that no rename expresses (JSON ``conversions``).
    conversions: tuple[Conversion, ...] = ()
    # Each applicable loader's verdict, the judging one first (``default``).
    verdicts: tuple[Verdict, ...] = ()
    # What remains after the confident fix (JSON ``after_fix`` when set).
    after_fix: FixOutlook | None = None

    @property
    def compatible(self) -> bool:
        """The judging loader's verdict; key parity (no ``error`` finding) without one."""
        if self.verdicts and self.verdicts[0].framework != "ckptdiff":
            return self.verdicts[0].loads
        return not any(f.severity == "error" for f in self.findings)

    @property
    def judged_by(self) -> Verdict | None:
        """The verdict ``compatible`` follows, when there are verdicts."""
        return self.verdicts[0] if self.verdicts else None

    @property
    def summary(self) -> dict[str, int]:
        """Counts: matched keys, findings per kind (info-level ones included), per severity."""
        kinds = Counter(map(attrgetter("kind"), self.findings))
        severities = Counter(map(attrgetter("severity"), self.findings))
        counts = {"matched": self.matched}
        counts.update({kind: kinds.get(kind, 0) for kind in BASE_KINDS})
        counts.update({kind: n for kind, n in sorted(kinds.items()) if kind not in BASE_KINDS})
        counts.update({"errors": severities["error"], "warnings": severities["warning"],
                       "info": severities["info"]})
        return counts

    def failing(self, fail_on: str = "error") -> list[Finding]:
        """Findings at or above ``fail_on`` (``error`` or ``warning``)."""
        levels = SEVERITIES[: SEVERITIES.index(fail_on) + 1]
        return [f for f in self.findings if f.severity in levels]

    def to_dict(self) -> dict[str, Any]:
        """The ``ckptdiff.report/1`` JSON document as a dict."""
        return self._document([f.to_dict() for f in self.findings],
                              [s.to_dict() for s in self.suggestions])

    def _document(self, findings: list[Any], suggestions: list[Any]) -> dict[str, Any]:
        document: dict[str, Any] = {
            "schema": REPORT_SCHEMA,
            "compatible": self.compatible,
            "verdicts": [v.to_dict() for v in self.verdicts],
            "source": self.source.to_dict(),
            "target": self.target.to_dict(),
            "summary": self.summary,
            "findings": findings,
            "suggestions": suggestions,
            "rules": [r.to_dict() for r in self.rules],
            "unpaired": [u.to_dict() for u in self.unpaired],
            "conversions": [c.to_dict() for c in self.conversions],
        }
        if self.explain:
            document["explain"] = [statement.to_dict() for statement in self.explain]
        if self.after_fix is not None:
            document["after_fix"] = self.after_fix.to_dict()
        return document

    def to_json(self, indent: int | None = 2) -> str:
        """Serialize to the report JSON schema, one finding (suggestion, rule, …) per line."""
        if indent is None:
            return jsonlines.dumps(self.to_dict(), _ROW_LISTS, indent)
        return "".join(self.json_chunks(indent))

    def json_chunks(self, indent: int = 2) -> Iterator[str]:
        """The text of ``to_json(indent)`` in pieces, to write a large report without holding
        it whole."""
        with collector.paused():  # rows and strings only: nothing cyclic
            # The two long lists are written as rows directly (``report_rows``), not as dicts.
            encoded = {"findings": finding_rows(self.findings),
                       "suggestions": suggestion_rows(self.suggestions)}
            document = self._document([], [])
        return jsonlines.chunks(document, _ROW_LISTS, indent, encoded)

    def to_text(self) -> str:
        """The grouped plain-text report (what ``raise_if_incompatible`` says)."""
        from ckptdiff.render.text import render_text

        return render_text(self)

    def raise_if_incompatible(self, fail_on: str = "error") -> None:
        """Raise :class:`IncompatibleError` carrying the grouped report when findings fail."""
        if self.failing(fail_on):
            raise IncompatibleError(self.to_text())

    def _repr_html_(self) -> str:
        """Compact HTML for notebooks: verdict, the tree of keys with findings, the rules."""
        from ckptdiff.render.html_notebook import report_fragment

        return report_fragment(self)

    def __repr__(self) -> str:
        verdict = "compatible" if self.compatible else "INCOMPATIBLE"
        parts = ", ".join(f"{k} {v}" for k, v in self.summary.items() if v)
        return f"<Report {verdict}: {self.source.path} -> {self.target.path} ({parts})>"
