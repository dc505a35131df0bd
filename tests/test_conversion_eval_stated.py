"""The eval's "fixed once the reading is stated": the rules a user writes from a declined entry's
readings, and the choice of the true reading by values (never the first one, never a guess)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch", reason="the oracle performs the ops with torch")

from tests.conversion_eval.models import Case  # noqa: E402
from tests.conversion_eval.stated import (  # noqa: E402
    declined_only,
    fragments,
    statement,
)
from tests.conversion_eval.truth import derive  # noqa: E402
from tests.helpers import manifest, t  # noqa: E402

from ckptdiff.diffing.match import diff_manifests  # noqa: E402
from ckptdiff.diffing.report import Report  # noqa: E402

HIDDEN = 8


def _case(saved: dict[str, Any], loaded: dict[str, Any]) -> Case:
    return Case("hand-made", Path("."), Path("none"), None, saved, loaded)


def _report(saved: dict[str, Any], loaded: dict[str, Any]) -> Report:
    def side(tensors: dict[str, Any]) -> Any:
        return manifest(*(t(k, *v.shape) for k, v in tensors.items()))
    return diff_manifests(side(saved), side(loaded))


def _fused(generator_seed: int = 0) -> Any:
    return torch.randn(3 * HIDDEN, HIDDEN, generator=torch.Generator().manual_seed(generator_seed))


def test_a_blocked_qkv_is_stated_from_its_reading_in_the_readings_order() -> None:
    fused = _fused()
    saved = {"enc.0.attn.Wqkv.weight": fused}
    loaded = dict(zip((f"enc.0.attn.{w}.weight" for w in "qkv"), fused.chunk(3), strict=True))
    report = _report(saved, loaded)
    document, why = statement(report, _case(saved, loaded), derive(saved, loaded), {"rules": []})
    assert document is not None, why
    (conversion,) = document["conversions"]
    assert conversion["sources"] == ["enc.0.attn.Wqkv.weight"]
    assert conversion["targets"] == [f"enc.0.attn.{w}.weight" for w in "qkv"]
    assert conversion["ops"] == [{"op": "chunk", "dim": 0, "parts": 3, "sizes": [HIDDEN] * 3}]


def test_an_interleaved_truth_cannot_be_stated() -> None:
    fused = _fused(1)
    heads = fused.reshape(2, 3, HIDDEN // 2, HIDDEN)  # per head: q, k, v rows in turn
    saved = {"enc.0.attn.Wqkv.weight": fused}
    loaded = {f"enc.0.attn.{w}.weight": heads[:, i].reshape(HIDDEN, HIDDEN)
              for i, w in enumerate("qkv")}
    report = _report(saved, loaded)
    document, why = statement(report, _case(saved, loaded), derive(saved, loaded), {"rules": []})
    assert document is None
    assert "none of its 1 reading(s) with ops is the truth" in why


def test_the_second_order_is_chosen_when_the_values_say_so() -> None:
    fused = torch.randn(2 * HIDDEN, HIDDEN)
    up, gate = fused.chunk(2)  # up first: the order the parts' own names do not give
    saved = {f"blocks.{i}.ffn.w12.weight": fused + i for i in range(2)}
    loaded = {**{f"blocks.{i}.ffn.up_proj.weight": up + i for i in range(2)},
              **{f"blocks.{i}.ffn.gate_proj.weight": gate + i for i in range(2)}}
    report = _report(saved, loaded)
    assert all(len(u.readings) == 2 for u in report.unpaired)
    document, _ = statement(report, _case(saved, loaded), derive(saved, loaded), {"rules": []})
    assert document is not None
    assert [c["targets"][0].rsplit(".", 2)[1] for c in document["conversions"]] == ["up_proj"] * 2


def test_a_reading_without_ops_has_no_fragment() -> None:
    fused = _fused()
    saved = {"enc.0.attn.Wqkv.weight": fused}
    loaded = dict(zip((f"enc.0.attn.{w}.weight" for w in "qkv"), fused.chunk(3), strict=True))
    (entry,) = _report(saved, loaded).unpaired
    blocked, interleaved = fragments(entry)
    assert interleaved is None  # no op performs an interleaved layout
    assert blocked == {"conversions": [{
        "sources": ["enc.0.attn.Wqkv.weight"],
        "targets": [f"enc.0.attn.{w}.weight" for w in "qkv"],
        "ops": [{"op": "chunk", "dim": 0, "parts": 3, "sizes": [HIDDEN] * 3}]}]}


def test_only_cases_whose_every_problem_is_declined_are_counted() -> None:
    assert declined_only(["declined (ambiguous): a -> b: why", "remap: Error(s) in loading"])
    assert not declined_only(["declined (ambiguous): a -> b: why", "missed rename: c -> d"])
    assert not declined_only(["remap: Error(s) in loading"])
    assert not declined_only([])


def _exaone_like() -> tuple[dict[str, Any], dict[str, Any]]:
    """A GPT-2-named checkpoint of a Llama: c_fc_0/c_fc_1 are up/gate here (values say so)."""
    generator = torch.Generator().manual_seed(2)
    saved: dict[str, Any] = {"transformer.wte.weight": torch.randn(64, 16, generator=generator),
                             "transformer.ln_f.weight": torch.randn(16, generator=generator)}
    loaded = {"model.embed_tokens.weight": saved["transformer.wte.weight"],
              "model.norm.weight": saved["transformer.ln_f.weight"]}
    pairs = {"ln_1": ("input_layernorm", (16,)), "ln_2": ("post_attention_layernorm", (16,)),
             **{f"attn.attention.{w}_proj": (f"self_attn.{w}_proj", (16, 16)) for w in "qkv"},
             "attn.attention.out_proj": ("self_attn.o_proj", (16, 16)),
             "mlp.c_fc_0": ("mlp.up_proj", (24, 16)), "mlp.c_fc_1": ("mlp.gate_proj", (24, 16)),
             "mlp.c_proj": ("mlp.down_proj", (16, 24))}
    for i in range(2):
        for old, (new, shape) in pairs.items():
            value = torch.randn(*shape, generator=generator)
            saved[f"transformer.h.{i}.{old}.weight"] = value
            loaded[f"model.layers.{i}.{new}.weight"] = value
    return saved, loaded


def test_siblings_get_the_true_readings_rules_once_before_the_written_ones() -> None:
    saved, loaded = _exaone_like()
    report = _report(saved, loaded)
    assert sum(len(u.readings) == 2 for u in report.unpaired) == 8  # 4 sources, 4 targets
    written = {"rules": [r.to_dict() for r in report.rules]}
    document, why = statement(report, _case(saved, loaded), derive(saved, loaded), written)
    assert document is not None, why
    assert document["rules"][:2] == [
        {"pattern": r"(^|\.)c_fc_0(?=\.|$)", "replacement": r"\g<1>up_proj"},
        {"pattern": r"(^|\.)c_fc_1(?=\.|$)", "replacement": r"\g<1>gate_proj"}]
    assert document["rules"][2:] == written["rules"]  # stated once, not once per block
    assert document["conversions"] == []
