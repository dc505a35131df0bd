"""Score the rename engine on the evaluation set: precision and recall of suggested pairs.

A case passes its pairs through the whole matcher (``diff_manifests``), as a user's diff would.
Precision counts every suggested pair (a wrong pair in a negative case counts against it); recall
counts the true pairs a careful tool can establish (``expected``; ``ambiguous`` ones are excluded).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ckptdiff.diffing.match import diff_manifests
from ckptdiff.diffing.report import Report
from ckptdiff.manifest import Manifest, TensorInfo

CASES = Path(__file__).resolve().parent / "cases"


@dataclass(frozen=True)
class Score:
    """One case's outcome."""

    name: str
    suggested: int
    correct: int
    expected: int
    found: int
    wrong: tuple[tuple[str, str], ...]
    missed: tuple[tuple[str, str], ...]
    report: Report


def manifest(side: dict[str, Any], name: str) -> Manifest:
    """A manifest from a case file's compact side."""
    tensors = tuple(
        TensorInfo(key=t["key"], shape=tuple(t["shape"]), dtype=t["dtype"],
                   storage=t.get("storage"), aliases=tuple(t.get("aliases", ())),
                   kind=t.get("kind", "parameter"))
        for t in side["tensors"])
    return Manifest(path=name, format=side["format"], tensors=tensors,
                    metadata=dict(side.get("metadata", {})))


def load_cases() -> list[dict[str, Any]]:
    """Every case document, by name."""
    return [json.loads(p.read_text()) for p in sorted(CASES.glob("*.json"))]


def score(case: dict[str, Any]) -> Score:
    """Run the matcher on one case and compare its suggestions with the truth."""
    report = diff_manifests(manifest(case["source"], case["name"] + ":source"),
                            manifest(case["target"], case["name"] + ":target"))
    suggested = {(s.source_key, s.target_key) for s in report.suggestions}
    expected = {tuple(p) for p in case["expected"]}
    true = expected | {tuple(p) for p in case["ambiguous"]}
    wrong = sorted(suggested - true)
    return Score(case["name"], len(suggested), len(suggested & true), len(expected),
                 len(suggested & expected), tuple(wrong), tuple(sorted(expected - suggested)),
                 report)


def totals(scores: list[Score]) -> tuple[float, float]:
    """(precision, recall) over all cases together."""
    suggested = sum(s.suggested for s in scores)
    correct = sum(s.correct for s in scores)
    expected = sum(s.expected for s in scores)
    found = sum(s.found for s in scores)
    precision = correct / suggested if suggested else 1.0
    recall = found / expected if expected else 1.0
    return precision, recall
