"""Inserted segments found alike in every block; ambiguity declined with its readings named."""

from __future__ import annotations

from tests.helpers import plan, t

from ckptdiff.manifest import TensorInfo
from ckptdiff.rename.fusion_order import spells
from ckptdiff.rename.plan import RenamePlan
from ckptdiff.rename.results import Unpaired

HIDDEN, INNER = 16, 24


def notes_of(result: RenamePlan, key: str) -> list[Unpaired]:
    return [u for u in result.unpaired if key in (u.source_key, u.target_key)]


def moe_block(layer: int, router: str | None) -> list[TensorInfo]:
    """One MoE block; ``router`` inserts that segment before the statistics (hub vs model)."""
    stats = f"model.layers.{layer}.mlp." + (f"{router}." if router else "")
    return [t(f"model.layers.{layer}.mlp.gate.weight", 3, HIDDEN),
            t(f"model.layers.{layer}.self_attn.q_proj.weight", HIDDEN, HIDDEN),
            t(stats + "moe_statics.e_score_correction_bias", 1, 3)]


def test_a_segment_inserted_in_the_one_moe_block_is_suggested() -> None:
    result = plan(moe_block(1, None), moe_block(1, "gate"))
    (suggestion,) = result.suggestions
    assert suggestion.source_key == "model.layers.1.mlp.moe_statics.e_score_correction_bias"
    assert suggestion.target_key == "model.layers.1.mlp.gate.moe_statics.e_score_correction_bias"
    assert "insert segment 'gate'" in suggestion.rule
    assert result.unpaired == ()


def test_a_segment_dropped_alike_in_every_block_is_suggested() -> None:
    source = [x for i in (1, 2) for x in moe_block(i, "gate")]
    target = [x for i in (1, 2) for x in moe_block(i, None)]
    result = plan(source, target)
    assert {(s.source_key, s.target_key) for s in result.suggestions} == {
        (f"model.layers.{i}.mlp.gate.moe_statics.e_score_correction_bias",
         f"model.layers.{i}.mlp.moe_statics.e_score_correction_bias") for i in (1, 2)}


def test_two_candidate_insertions_are_declined_with_both_named() -> None:
    source = moe_block(1, None)
    target = moe_block(1, "gate") + [t("model.layers.1.mlp.router.moe_statics."
                                       "e_score_correction_bias", 1, 3)]
    result = plan(source, target)
    assert result.suggestions == ()
    (note,) = notes_of(result, "model.layers.1.mlp.moe_statics.e_score_correction_bias")
    assert set(note.candidates) == {
        "model.layers.1.mlp.gate.moe_statics.e_score_correction_bias",
        "model.layers.1.mlp.router.moe_statics.e_score_correction_bias"}
    assert "not guessing" in note.reason


def test_blocks_that_move_differently_are_declined() -> None:
    source = [x for i in (1, 2) for x in moe_block(i, None)]
    target = moe_block(1, "gate") + moe_block(2, "router")
    result = plan(source, target)
    assert result.suggestions == ()
    assert notes_of(result, "model.layers.1.mlp.moe_statics.e_score_correction_bias")


def exaone_like(names: tuple[str, str]) -> tuple[list[TensorInfo], list[TensorInfo]]:
    """EXAONE's hub names (``c_fc_0``/``c_fc_1`` given as ``names``) and the Llama model's."""
    source, target = [t("transformer.wte.weight", 64, HIDDEN)], [
        t("model.embed_tokens.weight", 64, HIDDEN)]
    for i in range(2):
        h, m = f"transformer.h.{i}", f"model.layers.{i}"
        for a, b in (("q_proj", "q_proj"), ("k_proj", "k_proj"), ("out_proj", "o_proj")):
            source.append(t(f"{h}.attn.attention.{a}.weight", HIDDEN, HIDDEN))
            target.append(t(f"{m}.self_attn.{b}.weight", HIDDEN, HIDDEN))
        source += [t(f"{h}.ln_1.weight", HIDDEN), t(f"{h}.ln_2.weight", HIDDEN),
                   t(f"{h}.mlp.c_proj.weight", HIDDEN, INNER)]
        target += [t(f"{m}.input_layernorm.weight", HIDDEN),
                   t(f"{m}.post_attention_layernorm.weight", HIDDEN),
                   t(f"{m}.mlp.down_proj.weight", HIDDEN, INNER)]
        source += [t(f"{h}.mlp.{n}.weight", INNER, HIDDEN) for n in names]
        target += [t(f"{m}.mlp.{n}.weight", INNER, HIDDEN) for n in ("gate_proj", "up_proj")]
    return source, target


def test_numbered_siblings_over_gate_and_up_are_declined_with_both_pairings() -> None:
    result = plan(*exaone_like(("c_fc_0", "c_fc_1")))
    paired = {s.source_key for s in result.suggestions}
    assert "transformer.h.0.mlp.c_proj.weight" in paired  # the block itself was renamed
    assert not any("c_fc" in key for key in paired)
    (note,) = notes_of(result, "transformer.h.1.mlp.c_fc_0.weight")
    assert "names don't decide gate_proj vs up_proj" in note.reason
    assert note.readings == ("c_fc_0 → gate_proj, c_fc_1 → up_proj",
                             "c_fc_0 → up_proj, c_fc_1 → gate_proj")
    assert set(note.candidates) == {"model.layers.1.mlp.gate_proj.weight",
                                    "model.layers.1.mlp.up_proj.weight"}
    (target_note,) = notes_of(result, "model.layers.0.mlp.up_proj.weight")
    assert set(target_note.candidates) == {"transformer.h.0.mlp.c_fc_0.weight",
                                           "transformer.h.0.mlp.c_fc_1.weight"}
    assert target_note.to_dict()["readings"] == list(note.readings)


def test_fused_qkv_names_both_layouts_and_the_blocked_ops() -> None:
    source = [t(f"enc.0.attn.{w}.weight", HIDDEN, HIDDEN) for w in ("v", "q", "k")]
    result = plan(source, [t("enc.0.attn.Wqkv.weight", 3 * HIDDEN, HIDDEN)])
    assert result.conversions == ()
    (note,) = notes_of(result, "enc.0.attn.Wqkv.weight")
    blocked, interleaved = note.readings
    assert blocked.startswith("blocked: q,k,v one after another along dim 0")
    assert '"op": "concat", "dim": 0, "parts": 3' in blocked
    assert interleaved.startswith("interleaved per head") and "query_key_value" in interleaved
    assert "16 + " in note.reason and "= 48 along dim 0" in note.reason


def test_a_split_qkv_names_chunk_sizes_in_qkv_order() -> None:
    kv = 8
    target = [t("enc.0.attn.q.weight", HIDDEN, HIDDEN), t("enc.0.attn.k.weight", kv, HIDDEN),
              t("enc.0.attn.v.weight", kv, HIDDEN)]
    result = plan([t("enc.0.attn.qkv.weight", HIDDEN + 2 * kv, HIDDEN)], target)
    (note,) = notes_of(result, "enc.0.attn.qkv.weight")
    assert '"sizes": [16, 8, 8]' in note.readings[0]
    assert note.readings[1].startswith("interleaved per key/value group")


def test_wqkv_spells_its_one_letter_parts() -> None:
    assert spells(("Wqkv", "weight"), ["q", "k", "v"])
    assert spells(("qkv", "weight"), ["q", "k", "v"])
    assert not spells(("Wqk", "weight"), ["q", "k", "v"])
    assert spells(("query_key_value", "weight"), ["q", "k", "v"])
    assert not spells(("wide", "weight"), ["i", "d", "e", "x"])


def test_targets_whose_words_order_them_are_not_called_undecided() -> None:
    source, target = exaone_like(("c_fc_0", "c_fc_1"))
    renamed = {"gate_proj": "layernorm_before", "up_proj": "layernorm_after"}
    target = [t(x.key.replace(x.key.split(".")[-2], renamed.get(x.key.split(".")[-2],
                                                                   x.key.split(".")[-2])),
                *x.shape) for x in target]
    result = plan(source, target)
    assert notes_of(result, "transformer.h.0.mlp.c_fc_0.weight") == []


def test_a_fused_qkv_in_a_block_the_renames_moved_is_still_reported() -> None:
    source = [t(f"encoder.layers.{i}.{n}.weight", HIDDEN) for i in range(2)
              for n in ("norm1", "norm2")]
    target = [t(f"layers.{i}.{n}.weight", HIDDEN) for i in range(2)
              for n in ("post_attention_layernorm", "post_mlp_layernorm")]
    source += [t(f"encoder.layers.{i}.attn.Wqkv.weight", 3 * HIDDEN, HIDDEN) for i in range(2)]
    target += [t(f"layers.{i}.self_attn.{w}_proj.weight", HIDDEN, HIDDEN) for i in range(2)
               for w in ("q", "k", "v")]
    result = plan(source, target)
    assert len(result.suggestions) == 4
    (note,) = notes_of(result, "encoder.layers.1.attn.Wqkv.weight")
    assert set(note.candidates) == {f"layers.1.self_attn.{w}_proj.weight" for w in "qkv"}
    assert len(note.readings) == 2
    # The parts' weak rename hints are not reported beside the fused tensor's note.
    assert notes_of(result, "layers.1.self_attn.q_proj.weight") == []


def test_a_segment_move_that_also_reads_as_a_prefix_is_suggested() -> None:
    # AXK1: the learned stage offers both "insert segment 'mlp'" and a longer prefix.
    source = moe_block(1, "gate") + [t("model.layers.1.post_mlp_layernorm.weight", HIDDEN)]
    target = moe_block(1, "gate") + [t("model.layers.1.mlp.post_mlp_layernorm.weight", HIDDEN)]
    (suggestion,) = plan(source, target).suggestions
    assert suggestion.target_key == "model.layers.1.mlp.post_mlp_layernorm.weight"
    assert "insert segment 'mlp'" in suggestion.rule


def test_a_segment_inserted_outside_blocks_before_a_named_leaf_is_suggested() -> None:
    # YOLOS: the leaf is the tensor's own name, not a module's bare weight.
    source = moe_block(1, "gate") + [t("encoder.mid_position_embeddings", 1, 5, HIDDEN)]
    target = moe_block(1, "gate") + [t("encoder.interpolation.mid_position_embeddings", 1, 5,
                                       HIDDEN)]
    (suggestion,) = plan(source, target).suggestions
    assert suggestion.target_key == "encoder.interpolation.mid_position_embeddings"
    assert "insert segment 'interpolation'" in suggestion.rule
