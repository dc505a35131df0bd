"""The report's rows written without dicts are the rows its dicts encode to, byte for byte."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from ckptdiff.diffing.report import Finding, Report, Side, TensorSide
from ckptdiff.diffing.report_rows import finding_rows, suggestion_rows
from ckptdiff.jsonlines import encode_row
from ckptdiff.rename.results import Suggestion

TEXT = st.text() | st.text(min_size=41)  # short strings share the memo; long ones skip it
SIDES = st.none() | st.builds(TensorSide, st.tuples(st.integers(0, 9), st.integers(0, 9)),
                              st.sampled_from(["float32", "bfloat16"]),
                              st.none() | st.sampled_from(["cpu", "cuda:0"]))
FINDINGS = st.builds(Finding, TEXT, TEXT, st.sampled_from(["error", "warning", "info"]), SIDES,
                     SIDES, st.none() | TEXT, st.none() | TEXT,
                     st.none() | st.tuples(st.none() | TEXT, st.none() | TEXT))
CONFIDENCES = (st.floats(allow_nan=False) | st.integers(-2, 2)
               | st.sampled_from([0.0, -0.0, 1.0, 1, 0.123456]))
SUGGESTIONS = st.builds(Suggestion, TEXT, TEXT, CONFIDENCES, TEXT, st.none() | TEXT,
                        st.none() | st.tuples(st.integers(0, 4), st.integers(0, 4)))


@given(st.lists(FINDINGS, max_size=8))
def test_finding_rows_are_their_dicts_encoded(findings: list[Finding]) -> None:
    shared = TensorSide((1, 2), "float32", "cpu")  # one object behind many rows, as key_findings
    findings += [Finding("missing", f"k{i}", "error", None, shared) for i in range(3)]
    assert finding_rows(findings) == [encode_row(f.to_dict()) for f in findings]


@given(st.lists(SUGGESTIONS, max_size=8))
def test_suggestion_rows_are_their_dicts_encoded(suggestions: list[Suggestion]) -> None:
    assert suggestion_rows(suggestions) == [encode_row(s.to_dict()) for s in suggestions]


def test_the_report_document_is_the_one_its_dict_gives() -> None:
    side = Side("a.pth", "torch_zip", 2, None)
    findings = (Finding("missing", "b.weight", "error", None, TensorSide((2,), "float32", "cpu")),
                Finding("unexpected", "a.weight", "error", TensorSide((2,), "float32", None),
                        None, "note é \"quoted\""))
    report = Report(side, side, 0, findings,
                    (Suggestion("a.weight", "b.weight", 0.95, "strip 'a.'"),))
    assert json.loads(report.to_json()) == report.to_dict()
    assert report.to_json(indent=None) == json.dumps(report.to_dict(), ensure_ascii=False)
    assert '\n    {"kind": "missing", "key": "b.weight", ' in report.to_json()
