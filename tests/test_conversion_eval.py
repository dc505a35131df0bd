"""The upstream-derived evaluation: transformers' own hub layouts, truth by values.

Builds every model type of tests/conversion_eval/models.py tiny (about a minute), diffs its
``save_pretrained`` file against the live model and remaps it; ``scripts/conversion_eval.py -v``
prints the same figures with every problem.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

pytest.importorskip("torch", reason="torch builds the evaluation models")
pytest.importorskip("transformers", reason="transformers writes the hub layouts")

from tests.conversion_eval.evaluate import (  # noqa: E402
    Score,
    decidable_recall,
    perform,
    score,
    stated_fixed,
    totals,
)
from tests.conversion_eval.models import MODEL_TYPES, build_case  # noqa: E402
from tests.conversion_eval.truth import derive  # noqa: E402


@pytest.fixture(scope="module")
def scores(tmp_path_factory: pytest.TempPathFactory) -> list[Score]:
    root = tmp_path_factory.mktemp("conversion_eval")
    return [score(build_case(name, root), root) for name in MODEL_TYPES]


def test_the_set_covers_many_model_types() -> None:
    assert len(MODEL_TYPES) >= 8


def test_nothing_wrong_is_suggested(scores: list[Score]) -> None:
    wrong = [p for s in scores for p in s.problems if p.startswith("wrong")]
    assert not wrong
    figures = totals(scores)
    assert figures["rename_precision"] >= 0.99 and figures["conversion_precision"] >= 0.99


def test_recall_and_end_to_end_meet_the_floor(scores: list[Score]) -> None:
    figures = totals(scores)
    assert figures["rename_recall"] >= FLOOR["rename_recall"], figures
    assert figures["conversion_recall"] >= FLOOR["conversion_recall"], figures
    assert figures["fixed"] >= FLOOR["fixed"], figures


def test_declined_pairs_are_their_own_category(scores: list[Score]) -> None:
    by_name = {s.name: s for s in scores}
    exaone = by_name["exaone"]
    assert exaone.declined == (4, 0)  # c_fc_0/c_fc_1 over gate_proj/up_proj in both layers
    assert sum(p.startswith("declined (ambiguous): ") for p in exaone.problems) == 4
    assert not any(p.startswith("missed") for p in exaone.problems)
    assert by_name["gte"].declined == (0, 4)  # qkv_proj weight and bias in both layers
    # gate + q/k/v fused (gqkv_proj, 2 stacks × 2 layers): the q/k/v layout caution holds.
    assert by_name["hrm_text"].declined == (0, 4)
    # RADIO's qkv meets its targets once the renames moved its blocks (wrapper stripped first).
    assert by_name["radio"].declined == (0, 4)
    # A gated delta net's in_proj: the sizes fix its four parts, nothing fixes their order.
    assert by_name["lara_mini"].declined == (0, 1)
    assert by_name["ernie4_5_moe"].renames == (1, 1, 1)  # the inserted 'gate' segment
    figures, decidable = totals(scores), decidable_recall(scores)
    # The goal figures count a declined pair as not found; the second figure leaves it out.
    assert decidable["rename_recall"] > figures["rename_recall"]
    assert decidable["conversion_recall"] > figures["conversion_recall"]


def test_decidable_recall_leaves_out_only_the_declined() -> None:
    one = Score("a", (8, 8, 10), (1, 1, 4), False, declined=(2, 1))
    assert decidable_recall([one]) == {"rename_recall": 1.0, "conversion_recall": 1 / 3}
    assert totals([one])["rename_recall"] == 0.8


def test_declined_only_cases_are_fixed_once_the_reading_is_stated(scores: list[Score]) -> None:
    once, of = stated_fixed(scores)
    assert once >= STATED_FLOOR, [p for s in scores for p in s.problems if p.startswith("stated")]
    stated = [s for s in scores if s.stated is not None]
    assert all(not s.fixed for s in stated)  # never counted in the goal figure fixed
    # A stated case that fails may only be one no reading with ops states; never a remap error
    # or a tensor that loads but differs from from_pretrained's.
    failed = [p for s in stated if not s.stated for p in s.problems if p.startswith("stated")]
    assert all(p.startswith("stated: cannot be stated") for p in failed), failed
    assert of >= once


def test_reports_validate(scores: list[Score], report_schema: dict[str, Any]) -> None:
    for s in scores:
        assert s.report is not None
        jsonschema.validate(json.loads(s.report.to_json()), report_schema)


def test_truth_by_values_sees_mixtral_experts(tmp_path: Path) -> None:
    case = build_case("mixtral", tmp_path)
    truth = derive(case.saved, case.loaded)
    gate_up = truth.joins["model.layers.0.mlp.experts.gate_up_proj"]
    assert gate_up == {f"model.layers.0.block_sparse_moe.experts.{e}.{w}.weight"
                       for e in range(3) for w in ("w1", "w3")}
    assert truth.renames["model.layers.1.block_sparse_moe.gate.weight"] == \
        "model.layers.1.mlp.gate.weight"
    assert "model.layers.0.self_attn.q_proj.weight" not in truth.renames  # unchanged


def test_the_oracle_refuses_a_wrong_order(tmp_path: Path) -> None:
    case = build_case("qwen2_moe", tmp_path)
    report = score(case, tmp_path).report
    assert report is not None
    conversion = next(c for c in report.conversions if c.targets[0].endswith("gate_up_proj"))
    parts = [case.saved[k] for k in conversion.sources]
    (made,) = perform(conversion.ops, parts)
    assert bool((made == case.loaded[conversion.targets[0]]).all())
    swapped_pairs = [p for i in range(0, len(parts), 2) for p in (parts[i + 1], parts[i])]
    (swapped,) = perform(conversion.ops, swapped_pairs)  # up before gate: loads, computes junk
    assert not bool((swapped == case.loaded[conversion.targets[0]]).all())


# Raised as the engine learns (the goals: 0.95, 0.95, 0.90). Measured on the 62-type set
# (0.7677, 0.7973, 0.5806 when it grew from 18 types, where they were 0.93, 0.81, 0.78).
FLOOR = {"rename_recall": 0.95, "conversion_recall": 0.79, "fixed": 0.78}
# Cases fixed once the true reading is stated in a rules file (measured 12 of 12).
STATED_FLOOR = 12
