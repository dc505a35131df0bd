"""Conversions inferred from shape arithmetic: stacks, concatenations, splits, and refusals."""

from __future__ import annotations

from typing import Any

import jsonschema
from tests.helpers import manifest, plan, t

from ckptdiff.diffing.match import diff_manifests
from ckptdiff.manifest import TensorInfo

LAYERS, EXPERTS, HIDDEN, INNER = 2, 3, 16, 24


def mixtral_hub(inner: int = INNER) -> list[TensorInfo]:
    return [t(f"model.layers.{i}.block_sparse_moe.experts.{e}.{w}.weight",
              *((HIDDEN, inner) if w == "w2" else (inner, HIDDEN)))
            for i in range(LAYERS) for e in range(EXPERTS) for w in ("w1", "w2", "w3")]


def fused(inner: int = INNER, gate_up: tuple[int, ...] | None = None) -> list[TensorInfo]:
    shape = gate_up or (EXPERTS, 2 * inner, HIDDEN)
    return [x for i in range(LAYERS) for x in (
        t(f"model.layers.{i}.mlp.experts.gate_up_proj", *shape),
        t(f"model.layers.{i}.mlp.experts.down_proj", EXPERTS, HIDDEN, inner))]


def test_mixtral_experts_stack_and_concatenate_in_transformers_order() -> None:
    result = plan(mixtral_hub(), fused())
    by_target = {c.target: c for c in result.conversions}
    assert set(by_target) == {x.key for x in fused()}
    gate_up = by_target["model.layers.0.mlp.experts.gate_up_proj"]
    prefix = "model.layers.0.block_sparse_moe.experts"
    assert gate_up.sources == tuple(f"{prefix}.{e}.{w}.weight"
                                    for e in range(EXPERTS) for w in ("w1", "w3"))
    assert [op.to_dict() for op in gate_up.ops] == [
        {"op": "concat", "dim": 0, "parts": 2, "per": "experts.{i}"}, {"op": "stack", "dim": 0}]
    assert gate_up.rule == "stack experts.{i}, concatenate w1,w3"
    down = by_target["model.layers.1.mlp.experts.down_proj"]
    assert [op.op for op in down.ops] == ["stack"]
    assert down.sources[-1] == "model.layers.1.block_sparse_moe.experts.2.w2.weight"
    assert result.unpaired == ()


def test_spelled_names_decide_the_order_not_the_key_order() -> None:
    source = [t(f"layers.0.mlp.experts.{e}.{w}.weight", INNER, HIDDEN)
              for e in range(EXPERTS) for w in ("up_proj", "gate_proj")]
    (conversion,) = plan(source, [t("layers.0.mlp.experts.gate_up_proj", EXPERTS, 2 * INNER,
                                    HIDDEN)]).conversions
    assert conversion.sources[:2] == ("layers.0.mlp.experts.0.gate_proj.weight",
                                      "layers.0.mlp.experts.0.up_proj.weight")
    assert conversion.confidence == 0.98


def test_transposed_expert_layout_ends_with_a_transpose() -> None:
    result = plan(mixtral_hub(), fused(gate_up=(EXPERTS, HIDDEN, 2 * INNER)))
    gate_up = next(c for c in result.conversions if c.target and "gate_up" in c.target)
    assert [op.to_dict() for op in gate_up.ops][-1] == {"op": "transpose", "dims": [1, 2]}
    assert [op.op for op in gate_up.ops] == ["concat", "stack", "transpose"]


def test_equal_hidden_and_inner_sizes_are_ambiguous() -> None:
    result = plan(mixtral_hub(inner=HIDDEN), fused(inner=HIDDEN))
    down = [c for c in result.conversions if c.target and c.target.endswith("down_proj")]
    assert not [c for c in result.conversions if c.target and c.target.endswith("gate_up_proj")]
    assert not down  # w1, w2 and w3 all fit it: nothing is chosen
    reasons = {u.target_key: u.reason for u in result.unpaired}
    assert "not guessing" in reasons["model.layers.0.mlp.experts.gate_up_proj"]


def test_split_weight_and_bias_into_numbered_parts_equal_and_unequal() -> None:
    source = [t("blocks.0.ffn.weights_in.weight", 2 * INNER, HIDDEN),
              t("blocks.0.ffn.weights_in.bias", 2 * INNER),
              t("blocks.0.ffn.proj.weight", 40, HIDDEN)]
    target = [t("blocks.0.ffn.w1.weight", INNER, HIDDEN),
              t("blocks.0.ffn.w2.weight", INNER, HIDDEN),
              t("blocks.0.ffn.w1.bias", INNER), t("blocks.0.ffn.w2.bias", INNER),
              t("blocks.0.ffn.proj.fc1.weight", 32, HIDDEN),
              t("blocks.0.ffn.proj.fc2.weight", 8, HIDDEN)]
    result = plan(source, target)
    by_source = {c.sources[0]: c for c in result.conversions}
    weight = by_source["blocks.0.ffn.weights_in.weight"]
    assert weight.targets == ("blocks.0.ffn.w1.weight", "blocks.0.ffn.w2.weight")
    assert weight.target is None
    assert weight.ops[0].to_dict() == {"op": "chunk", "dim": 0, "parts": 2,
                                       "sizes": [INNER, INNER]}
    assert by_source["blocks.0.ffn.weights_in.bias"].targets == ("blocks.0.ffn.w1.bias",
                                                                 "blocks.0.ffn.w2.bias")
    assert by_source["blocks.0.ffn.proj.weight"].ops[0].sizes == (32, 8)


def test_fused_qkv_is_reported_ambiguous_not_converted() -> None:
    source = [t(f"enc.0.attn.{w}.weight", HIDDEN, HIDDEN) for w in ("q", "k", "v")]
    result = plan(source, [t("enc.0.attn.Wqkv.weight", 3 * HIDDEN, HIDDEN)])
    assert result.conversions == ()
    (note,) = [u for u in result.unpaired if u.target_key == "enc.0.attn.Wqkv.weight"]
    assert "interleaved per head" in note.reason
    assert set(note.candidates) == {x.key for x in source}


def test_order_not_in_the_names_is_not_guessed() -> None:
    source = [t("m.0.alpha.weight", 8, 4), t("m.0.beta.weight", 8, 4)]
    result = plan(source, [t("m.0.fused.weight", 16, 4)])
    assert result.conversions == ()
    assert any("which order" in u.reason for u in result.unpaired)


def test_a_gap_in_the_index_set_is_no_stack() -> None:
    source = [t(f"l.0.experts.{e}.w.weight", 4, 4) for e in (0, 1, 3)]
    assert plan(source, [t("l.0.experts.w", 3, 4, 4)]).conversions == ()


def test_conversions_never_change_findings_and_validate(report_schema: dict[str, Any]) -> None:
    source, target = mixtral_hub(), fused()
    report = diff_manifests(manifest(*source), manifest(*target, live=True))
    assert report.summary["unexpected"] == len(source)
    assert report.summary["missing"] == len(target)
    assert not report.compatible
    document = report.to_dict()
    assert len(document["conversions"]) == 2 * LAYERS
    jsonschema.validate(document, report_schema)


def test_router_rename_is_confirmed_by_the_experts_that_moved_alike() -> None:
    routers = [t(f"model.layers.{i}.block_sparse_moe.gate.weight", EXPERTS, HIDDEN)
               for i in range(LAYERS)]
    moved = [t(f"model.layers.{i}.mlp.gate.weight", EXPERTS, HIDDEN) for i in range(LAYERS)]
    result = plan(mixtral_hub() + routers, fused() + moved)
    assert {(s.source_key, s.target_key) for s in result.suggestions} == {
        (a.key, b.key) for a, b in zip(routers, moved, strict=True)}
    assert result.unpaired == ()
    # Without the experts the learned rule lacks support; the vocabulary (block_sparse_moe ~ mlp,
    # gate = gate) agrees in every block, and says so.
    alone = plan(routers, moved)
    assert {(s.source_key, s.target_key) for s in alone.suggestions} == {
        (a.key, b.key) for a, b in zip(routers, moved, strict=True)}
    assert all("in every block" in s.rule for s in alone.suggestions)


def _exaone_like(names: dict[str, str], layers: int = 2) -> tuple[list[TensorInfo],
                                                                  list[TensorInfo]]:
    shapes = {"attn.attention.q_proj.weight": (16, 16), "attn.attention.k_proj.weight": (8, 16),
              "attn.attention.v_proj.weight": (8, 16), "attn.attention.out_proj.weight": (16, 16),
              "ln_1.weight": (16,), "ln_2.weight": (16,)}
    source = [t(f"transformer.h.{i}.{k}", *s) for i in range(layers) for k, s in shapes.items()]
    target = [t(f"model.layers.{i}.{names[k]}", *s) for i in range(layers)
              for k, s in shapes.items()]
    return source, target


EXAONE = {"attn.attention.q_proj.weight": "self_attn.q_proj.weight",
          "attn.attention.k_proj.weight": "self_attn.k_proj.weight",
          "attn.attention.v_proj.weight": "self_attn.v_proj.weight",
          "attn.attention.out_proj.weight": "self_attn.o_proj.weight",
          "ln_1.weight": "input_layernorm.weight", "ln_2.weight": "post_attention_layernorm.weight"}


def test_whole_layout_rename_by_vocabulary_and_block_order() -> None:
    source, target = _exaone_like(EXAONE)
    result = plan(source, target)
    pairs = {(s.source_key, s.target_key) for s in result.suggestions}
    assert pairs == {(a.key, b.key) for a, b in zip(source, target, strict=True)}
    rules = {s.source_key: s.rule for s in result.suggestions}
    assert "by their place in the block" in rules["transformer.h.1.ln_2.weight"]


def test_norms_named_after_their_sublayer_go_before_it_when_the_targets_say_so() -> None:
    # Meta's attention_norm is the norm *before* attention: never post_attention_layernorm,
    # though they share the word; the targets' places (0.5, 1.5) admit the before-reading only.
    source = [t(f"layers.{i}.{n}.weight", 16) for i in range(2)
              for n in ("attention_norm", "ffn_norm")]
    target = [t(f"model.layers.{i}.{n}.weight", 16) for i in range(2)
              for n in ("input_layernorm", "post_attention_layernorm")]
    pairs = {s.source_key: s.target_key for s in plan(source, target).suggestions}
    assert pairs == {f"layers.{i}.{a}.weight": f"model.layers.{i}.{b}.weight" for i in range(2)
                     for a, b in (("attention_norm", "input_layernorm"),
                                  ("ffn_norm", "post_attention_layernorm"))}


def test_one_block_that_shares_a_word_with_another_model_pairs_nothing() -> None:
    source = [t(f"encoder.layer.0.{k}", 16, 16) for k in (
        "attention.self.query.weight", "attention.self.key.weight", "intermediate.dense.weight",
        "output.dense.weight")] + [t("encoder.layer.0.attention.output.dense.weight", 16, 8)]
    target = [t("h.0.attn.c_proj.weight", 16, 8), t("h.0.mlp.c_fc.weight", 64, 16),
              t("h.0.attn.c_attn.weight", 48, 16), t("h.0.ln_1.weight", 16)]
    assert plan(source, target).suggestions == ()


def test_a_fit_by_size_alone_yields_the_parts_another_fused_name_spells() -> None:
    # GTE: qkv_proj [3D, D] also fits up_proj + gate_proj by size when I = 1.5 D, and
    # up_gate_proj [2I, D] fits q/k/v; only the names settle it.
    inner = 3 * HIDDEN // 2
    source = [t("enc.0.attention.qkv_proj.weight", 3 * HIDDEN, HIDDEN),
              t("enc.0.mlp.up_gate_proj.weight", 2 * inner, HIDDEN)]
    target = [t(f"enc.0.self_attn.{w}_proj.weight", HIDDEN, HIDDEN) for w in ("q", "k", "v")]
    target += [t(f"enc.0.mlp.{w}_proj.weight", inner, HIDDEN) for w in ("gate", "up")]
    result = plan(source, target)
    (split,) = result.conversions
    assert split.sources == ("enc.0.mlp.up_gate_proj.weight",)
    assert split.targets == ("enc.0.mlp.up_proj.weight", "enc.0.mlp.gate_proj.weight")
    assert [op.to_dict() for op in split.ops] == [
        {"op": "chunk", "dim": 0, "parts": 2, "sizes": [inner, inner]}]
    (note,) = [u for u in result.unpaired if u.source_key == "enc.0.attention.qkv_proj.weight"]
    assert "interleaved per head" in note.reason
