"""Fused tensors whose parts the sizes settle but whose order the names do not: declined with the
readings (every order, or the q/k/v layouts), never converted; and the after-fix outlook counts
the keys a confident conversion explains as fixed."""

from __future__ import annotations

from typing import Any

import jsonschema
from tests.helpers import manifest, plan, t
from tests.test_conversions import EXPERTS, HIDDEN, LAYERS, fused, mixtral_hub

from ckptdiff.diffing.match import diff_manifests
from ckptdiff.manifest import TensorInfo
from ckptdiff.rename.fusion_order import spells
from ckptdiff.rename.plan import RenamePlan
from ckptdiff.rename.results import Unpaired
from ckptdiff.rename.statements import ambiguous_lines
from ckptdiff.render.rows import outlook as headline

INNER = 24


def _note(result: RenamePlan, source: str) -> Unpaired:
    (note,) = [u for u in result.unpaired if u.source_key == source and u.target_key is None]
    return note


def _mlp_targets(block: str) -> list[TensorInfo]:
    return [x for w in ("gate_proj", "up_proj") for x in (
        t(f"{block}.mlp.{w}.weight", INNER, HIDDEN), t(f"{block}.mlp.{w}.bias", INNER))]


def test_numbered_fused_mlp_into_gate_and_up_is_declined_with_both_orders() -> None:
    # Sapiens2's ffn.w12 holds w1 and w2; nothing in the names says which one is gate_proj.
    source = [x for i in range(LAYERS) for x in (
        t(f"layer.{i}.ffn.w12.weight", 2 * INNER, HIDDEN), t(f"layer.{i}.ffn.w12.bias", 2 * INNER))]
    target = [x for i in range(LAYERS) for x in _mlp_targets(f"layer.{i}")]
    result = plan(source, target)
    assert result.conversions == ()
    for leaf in ("weight", "bias"):
        note = _note(result, f"layer.1.ffn.w12.{leaf}")
        assert set(note.candidates) == {f"layer.1.mlp.gate_proj.{leaf}",
                                        f"layer.1.mlp.up_proj.{leaf}"}
        assert "nothing in the names says in which order" in note.reason
        assert len(note.readings) == 2
        assert note.readings[0].startswith("gate_proj, up_proj in this order along dim 0")
        assert note.readings[1].startswith("up_proj, gate_proj in this order along dim 0")
        assert '"sizes": [24, 24]' in note.readings[0]
    lines = ambiguous_lines(result.unpaired)
    assert "  reading 1: gate_proj, up_proj in this order along dim 0" in "\n".join(lines)
    assert not any("interleaved" in line for line in lines)  # an order, not a q/k/v layout


def test_names_that_decide_the_order_still_convert() -> None:
    # fc12 → fc1, fc2: one stem, the numbers ascending; gate_up_proj spells its parts.
    source = [t("layer.0.ffn.fc12.weight", 2 * INNER, HIDDEN),
              t("layer.0.mlp.gate_up_proj.weight", 2 * INNER, HIDDEN)]
    target = [t("layer.0.ffn.fc2.weight", INNER, HIDDEN),
              t("layer.0.ffn.fc1.weight", INNER, HIDDEN),
              t("layer.0.mlp.up_proj.weight", INNER, HIDDEN),
              t("layer.0.mlp.gate_proj.weight", INNER, HIDDEN)]
    result = plan(source, target)
    assert {c.sources[0]: c.targets for c in result.conversions} == {
        "layer.0.ffn.fc12.weight": ("layer.0.ffn.fc1.weight", "layer.0.ffn.fc2.weight"),
        "layer.0.mlp.gate_up_proj.weight": ("layer.0.mlp.gate_proj.weight",
                                            "layer.0.mlp.up_proj.weight")}
    assert not [u for u in result.unpaired if u.readings]


def test_four_unequal_parts_name_the_models_order_and_any_other() -> None:
    # A gated delta net's in_proj: rows qkv | z | b | a; the sizes fix the set, not the order
    # (and b, a are the same size: a swap loads silently).
    source = [t("layers.0.linear_attn.in_proj.weight", 96 + 32 + 4 + 4, HIDDEN)]
    target = [t(f"layers.0.linear_attn.in_proj_{w}.weight", n, HIDDEN)
              for w, n in (("qkv", 96), ("z", 32), ("b", 4), ("a", 4))]
    result = plan(source, target)
    assert result.conversions == ()
    note = _note(result, "layers.0.linear_attn.in_proj.weight")
    assert set(note.candidates) == {x.key for x in target}
    assert note.readings == (
        'in_proj_qkv, in_proj_z, in_proj_b, in_proj_a in this order along dim 0 (conversion ops '
        '[{"op": "chunk", "dim": 0, "parts": 4, "sizes": [96, 32, 4, 4]}])',
        "any other of the 23 orders of in_proj_qkv, in_proj_z, in_proj_b, in_proj_a")


def test_a_gate_fused_with_q_k_v_gets_the_qkv_layout_caution() -> None:
    source = [t("layers.0.attn.gqkv_proj.weight", 4 * HIDDEN, HIDDEN)]
    target = [t(f"layers.0.self_attn.{w}_proj.weight", HIDDEN, HIDDEN)
              for w in ("q", "k", "v", "gate")]
    result = plan(source, target)
    assert result.conversions == ()
    note = _note(result, "layers.0.attn.gqkv_proj.weight")
    assert set(note.candidates) == {x.key for x in target}
    assert "interleaved per head" in note.reason
    blocked, interleaved = note.readings
    # gqkv spells the blocked order by initials: gate first, as the fused name writes it.
    assert blocked.startswith("blocked: gate_proj,q_proj,k_proj,v_proj one after another")
    assert '"sizes": [16, 16, 16, 16]' in blocked
    assert interleaved.startswith("interleaved per head")


def test_a_gate_unspelled_beside_q_k_v_leaves_the_blocked_order_unsaid() -> None:
    source = [t("layers.0.attn.fused.weight", 4 * HIDDEN, HIDDEN)]
    target = [t(f"layers.0.self_attn.{w}_proj.weight", HIDDEN, HIDDEN)
              for w in ("q", "k", "v", "gate")]
    note = _note(plan(source, target), "layers.0.attn.fused.weight")
    assert "in an order the names do not say" in note.readings[0]
    assert "conversion ops" not in note.readings[0]


def test_q_and_k_without_v_beside_a_gate_are_no_qkv_layout() -> None:
    # Not all three of q, k, v: the q/k/v caution does not apply, the order caution does.
    source = [t("layers.0.attn.fused.weight", 3 * HIDDEN, HIDDEN)]
    target = [t(f"layers.0.self_attn.{w}_proj.weight", HIDDEN, HIDDEN)
              for w in ("q", "k", "gate")]
    note = _note(plan(source, target), "layers.0.attn.fused.weight")
    assert "interleaved" not in note.reason
    assert "which order" in note.reason
    assert len(note.readings) == 6  # 3! orders, each a reading


def test_initials_spell_three_or_more_parts_never_two() -> None:
    assert spells(("attn", "gqkv_proj", "weight"), ["gate_proj", "q_proj", "k_proj", "v_proj"])
    assert not spells(("mlp", "gu", "weight"), ["gate_proj", "up_proj"])
    assert not spells(("attn", "gqk_proj", "weight"), ["gate_proj", "q_proj", "k_proj",
                                                       "v_proj"])


def _wrapped_blocks(qkv: bool) -> tuple[list[TensorInfo], list[TensorInfo]]:
    """RADIO-like: a wrapper stripped from a few keys, the blocks moved under another name."""
    source = [t("wrap.summary_idxs", 2), t("wrap.cond.norm_mean", 3), t("wrap.cond.norm_std", 3)]
    target = [t("summary_idxs", 2), t("cond.norm_mean", 3), t("cond.norm_std", 3)]
    for i in range(LAYERS):
        for leaf, shape in (("norm1.weight", (HIDDEN,)), ("norm1.bias", (HIDDEN,)),
                            ("mlp.fc1.weight", (INNER, HIDDEN)), ("mlp.fc1.bias", (INNER,)),
                            ("mlp.fc2.weight", (HIDDEN, INNER))):
            source.append(t(f"wrap.model.blocks.{i}.{leaf}", *shape))
            target.append(t(f"encoder.layer.{i}.{leaf}", *shape))
        if qkv:
            source.append(t(f"wrap.model.blocks.{i}.attn.qkv.weight", 3 * HIDDEN, HIDDEN))
            target += [t(f"encoder.layer.{i}.attention.{w}_proj.weight", HIDDEN, HIDDEN)
                       for w in ("q", "k", "v")]
    return source, target


def test_a_block_moved_by_renames_meets_its_fused_targets_under_its_stored_name() -> None:
    source, target = _wrapped_blocks(qkv=True)
    result = plan(source, target)
    assert len(result.suggestions) == 3 + 5 * LAYERS
    for i in range(LAYERS):
        note = _note(result, f"wrap.model.blocks.{i}.attn.qkv.weight")
        assert set(note.candidates) == {f"encoder.layer.{i}.attention.{w}_proj.weight"
                                        for w in ("q", "k", "v")}
        assert "interleaved per head" in note.reason and len(note.readings) == 2
    assert result.conversions == ()


def test_after_fix_counts_what_conversions_explain(report_schema: dict[str, Any]) -> None:
    routers = [t(f"model.layers.{i}.block_sparse_moe.gate.weight", EXPERTS, HIDDEN)
               for i in range(LAYERS)]
    moved = [t(f"model.layers.{i}.mlp.gate.weight", EXPERTS, HIDDEN) for i in range(LAYERS)]
    source, target = mixtral_hub() + routers, fused() + moved
    report = diff_manifests(manifest(*source), manifest(*target, live=True))
    document = report.to_dict()
    jsonschema.validate(document, report_schema)
    outlook = document["after_fix"]
    assert outlook["remaining"] == [] and outlook["loads"] is True
    assert outlook["renamed"] == LAYERS and outlook["converted"] == 2 * LAYERS
    assert "stack experts.{i}, concatenate w1,w3" in outlook["fix"]
    assert str(headline(report)).endswith(f"({LAYERS} keys, {2 * LAYERS} conversions): it loads")


def test_after_fix_with_conversions_only_and_one_key_left() -> None:
    # No rename at all: the conversions alone make an outlook; what they leave still remains.
    extra = t("model.layers.0.block_sparse_moe.experts.0.w9.weight", 5, 7)
    report = diff_manifests(manifest(*mixtral_hub(), extra), manifest(*fused(), live=True))
    assert report.after_fix is not None
    assert [f.key for f in report.after_fix.remaining] == [extra.key]
    assert report.after_fix.converted == 2 * LAYERS and report.after_fix.renamed == 0
    assert report.after_fix.loads is False
    assert f"({2 * LAYERS} conversions): 1 unexpected key remains" in str(headline(report))
