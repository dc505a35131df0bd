"""The rename evaluation set: precision and recall over real-model cases (tests/rename_eval).

Cases are JSON manifests written by tests/rename_eval/make_cases.py from real models (torch nn,
transformers with small configs, Keras 3); ``scripts/rename_eval.py`` prints the same numbers.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from tests.rename_eval.evaluate import load_cases, score, totals

CASES = load_cases()


def test_the_set_is_large_and_has_negatives() -> None:
    assert len(CASES) >= 30
    negatives = [c for c in CASES if not c["expected"]]
    assert len(negatives) >= 8
    assert {"bert_vs_gpt2", "pooler_removed_head_added", "twins_renamed_ambiguous"} <= {
        c["name"] for c in negatives}


def test_precision_and_recall_meet_the_goal() -> None:
    precision, recall = totals([score(case) for case in CASES])
    assert precision >= 0.99, f"precision {precision:.4f} < 0.99 (python scripts/rename_eval.py -v)"
    assert recall >= 0.95, f"recall {recall:.4f} < 0.95 (python scripts/rename_eval.py -v)"


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_case_suggests_nothing_false(case: dict[str, Any], report_schema: dict[str, Any]) -> None:
    result = score(case)
    assert not result.wrong, f"wrong pairs: {result.wrong}"
    document = json.loads(result.report.to_json())
    jsonschema.validate(document, report_schema)


def test_ambiguous_twins_are_explained_not_guessed() -> None:
    case = next(c for c in CASES if c["name"] == "twins_renamed_ambiguous")
    report = score(case).report
    assert report.suggestions == ()
    reasons = {u.source_key: u.reason for u in report.unpaired if u.source_key}
    assert set(reasons) == {"left.weight", "left.bias", "right.weight", "right.bias"}


def test_resized_head_is_explained_by_its_shape() -> None:
    case = next(c for c in CASES if c["name"] == "dataparallel_resized_head")
    report = score(case).report
    reasons = {u.source_key: u.reason for u in report.unpaired if u.source_key}
    assert "shapes differ: [5, 64] vs [10, 64]" in reasons["module.7.weight"]
    assert "strip prefix 'module.'" in reasons["module.7.weight"]
