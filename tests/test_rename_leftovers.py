"""Leftover pairs (the one open pair of a shape side by side, a word in common), and their traps."""

from __future__ import annotations

from tests.helpers import plan, t

from ckptdiff.manifest import TensorInfo
from ckptdiff.rename.plan import RenamePlan
from ckptdiff.rename.results import Unpaired

HIDDEN, HEADS, INNER = 16, 4, 24


def pairs(result: RenamePlan) -> dict[str, str]:
    return {s.source_key: s.target_key for s in result.suggestions}


def notes_of(result: RenamePlan, key: str) -> list[Unpaired]:
    return [u for u in result.unpaired if key in (u.source_key, u.target_key)]


def attention(prefix: str, extra: dict[str, int], layers: range = range(2)) -> list[TensorInfo]:
    """Blocks that load as they are, plus ``extra`` parameters (name → length) in each."""
    keys = [t(f"{prefix}.{i}.self_attn.{p}_proj.weight", HIDDEN, HIDDEN) for i in layers
            for p in "qkvo"]
    keys += [t(f"{prefix}.{i}.input_layernorm.weight", HIDDEN) for i in layers]
    return keys + [t(f"{prefix}.{i}.{name}", size) for i in layers for name, size in extra.items()]


def test_a_sink_parameter_renamed_in_its_one_block_pairs_at_low_confidence() -> None:
    # MiMo-V2-Flash: only layer 1 has sinks; one key, so no learned rule supports the rename.
    sink = {"self_attn.attention_sink_bias": HEADS}
    source = attention("model.layers", {}, range(1)) + attention("model.layers", sink, range(1, 2))
    target = attention("model.layers", {}, range(1)) + attention(
        "model.layers", {"self_attn.sinks": HEADS}, range(1, 2))
    result = plan(source, target)
    (suggestion,) = result.suggestions
    assert (suggestion.source_key, suggestion.target_key) == (
        "model.layers.1.self_attn.attention_sink_bias", "model.layers.1.self_attn.sinks")
    assert suggestion.confidence < 0.72  # below every learned stage
    assert "one open pair of its shape there" in suggestion.rule
    assert result.unpaired == ()


def test_the_tightest_scope_settles_first_then_the_blocks_leftover() -> None:
    # HY-V4: two leftovers of one shape per block, one inside self_attn, one across the block.
    source = attention("model.layers", {"self_attn.learnable_sink_param": HIDDEN,
                                        "hc_pre.hc_attn_layer.hc_scale": HIDDEN})
    target = attention("model.layers", {"self_attn.sinks": HIDDEN, "attn_hc.scale": HIDDEN})
    found = pairs(plan(source, target))
    for i in range(2):
        assert found[f"model.layers.{i}.self_attn.learnable_sink_param"] == (
            f"model.layers.{i}.self_attn.sinks")
        assert found[f"model.layers.{i}.hc_pre.hc_attn_layer.hc_scale"] == (
            f"model.layers.{i}.attn_hc.scale")


def test_a_leftover_outside_blocks_composes_with_the_learned_prefix() -> None:
    # Dory: backbone.* → model.* is learned from the blocks; the embedding is left alone.
    source = attention("backbone.layers", {}) + [t("backbone.embeddings.weight", 64, HIDDEN)]
    target = attention("model.layers", {}) + [t("model.embed_tokens.weight", 64, HIDDEN)]
    found = pairs(plan(source, target))
    assert found["backbone.embeddings.weight"] == "model.embed_tokens.weight"
    assert found["backbone.layers.1.self_attn.q_proj.weight"] == (
        "model.layers.1.self_attn.q_proj.weight")


def test_a_top_level_leftover_pairs_by_a_shared_word_stem() -> None:
    source = attention("layers", {}) + [t("patchifier.weight", HIDDEN, 48)]
    target = attention("layers", {}) + [t("patch_embed.weight", HIDDEN, 48)]
    assert pairs(plan(source, target)) == {"patchifier.weight": "patch_embed.weight"}


def test_a_replaced_parameter_without_a_shared_word_is_refused_and_said() -> None:
    # A model that really replaced a temperature by attention sinks of the same shape.
    result = plan(attention("model.layers", {"self_attn.temperature": HEADS}, range(1)),
                  attention("model.layers", {"self_attn.sinks": HEADS}, range(1)))
    assert result.suggestions == ()
    (note,) = notes_of(result, "model.layers.0.self_attn.temperature")
    assert note.candidates == ("model.layers.0.self_attn.sinks",)
    assert "not suggested" in note.reason


def test_two_leftovers_of_one_shape_beside_one_target_are_never_guessed() -> None:
    result = plan(attention("model.layers", {"self_attn.attention_sink_bias": HEADS,
                                             "self_attn.learnable_sink_param": HEADS}, range(1)),
                  attention("model.layers", {"self_attn.sinks": HEADS}, range(1)))
    assert result.suggestions == ()
    assert notes_of(result, "model.layers.0.self_attn.sinks")


def test_a_leftover_that_pairs_differently_in_another_block_is_refused() -> None:
    source = attention("model.layers", {"self_attn.attention_sink_bias": HEADS})
    target = (attention("model.layers", {"self_attn.sinks": HEADS}, range(1))
              + attention("model.layers", {"self_attn.sink_gate": HEADS}, range(1, 2)))
    result = plan(source, target)
    assert result.suggestions == ()
    (note,) = notes_of(result, "model.layers.0.self_attn.attention_sink_bias")
    assert "alike in every block" in note.reason


def test_a_bias_never_becomes_a_weight_of_a_like_named_module() -> None:
    result = plan(attention("model.layers", {"linear_attn.out_norm.bias": HIDDEN}),
                  attention("model.layers", {"linear_attn.norm.weight": HIDDEN}))
    assert result.suggestions == ()


def test_a_norm_renamed_beside_its_modules_other_keys_pairs_by_its_leaf() -> None:
    result = plan(attention("model.layers", {"linear_attn.out_norm.weight": HIDDEN}),
                  attention("model.layers", {"linear_attn.norm.weight": HIDDEN}))
    assert len(result.suggestions) == 2
    assert pairs(result)["model.layers.1.linear_attn.out_norm.weight"] == (
        "model.layers.1.linear_attn.norm.weight")


def test_a_target_a_conversion_explains_is_no_leftover_partner() -> None:
    # The experts stack into one tensor; an extra source tensor of that shape, named alike,
    # must not take the stacked target as a leftover.
    experts = [t(f"model.layers.0.mlp.experts.{e}.down_proj.weight", HIDDEN, INNER)
               for e in range(3)]
    source = experts + [t("model.layers.0.mlp.gate.weight", 3, HIDDEN),
                        t("model.layers.0.mlp.down_proj_stack", 3, HIDDEN, INNER)]
    target = [t("model.layers.0.mlp.gate.weight", 3, HIDDEN),
              t("model.layers.0.mlp.experts.down_proj", 3, HIDDEN, INNER)]
    result = plan(source, target)
    assert result.conversions
    assert "model.layers.0.mlp.down_proj_stack" not in pairs(result)


def test_names_that_oppose_in_place_or_sublayer_are_refused() -> None:
    # One shared word each, but pre/post and attn/mlp say these are different tensors.
    for old, new in (("pre_norm.weight", "post_norm.weight"), ("attn_scale", "mlp_scale")):
        result = plan(attention("model.layers", {old: HIDDEN}, range(1)),
                      attention("model.layers", {new: HIDDEN}, range(1)))
        assert result.suggestions == (), (old, new)


def test_a_router_bias_renamed_in_its_one_moe_block_pairs() -> None:
    # HY-V3: a zero buffer renamed; without the pair, remap's output fails strict loading.
    source = attention("model.layers", {"mlp.expert_bias": 3}, range(1))
    target = attention("model.layers", {"mlp.e_score_correction_bias": 3}, range(1))
    assert pairs(plan(source, target)) == {
        "model.layers.0.mlp.expert_bias": "model.layers.0.mlp.e_score_correction_bias"}


def test_a_head_left_under_a_wrapper_the_rest_left_pairs_outside_blocks() -> None:
    # Fuyu: language_model.model.* moved; language_model.lm_head is the one key left.
    source = attention("language_model.model.layers", {}) + [
        t("language_model.lm_head.weight", 64, HIDDEN)]
    target = attention("model.language_model.layers", {}) + [t("lm_head.weight", 64, HIDDEN)]
    assert pairs(plan(source, target))["language_model.lm_head.weight"] == "lm_head.weight"


def test_a_leftover_beside_a_target_that_stays_missing_is_refused() -> None:
    # Another missing tensor in the block says the models differ there: one shape in common
    # is then a coincidence (a final norm against another model's embedding norm).
    source = attention("model.layers", {"self_attn.attention_sink_bias": HEADS}, range(1))
    target = attention("model.layers", {"self_attn.sinks": HEADS,
                                        "self_attn.gate_proj.weight": HIDDEN}, range(1))
    result = plan(source, target)
    assert result.suggestions == ()
    (note,) = notes_of(result, "model.layers.0.self_attn.attention_sink_bias")
    assert "stay unexplained" in note.reason


def test_a_container_word_alone_is_no_shared_name() -> None:
    # linear_attn.in_proj_z and self_attn.indexer.wq_b share only "attn", of their containers.
    source = attention("model.layers", {"linear_attn.in_proj_z.weight": HIDDEN}, range(1))
    target = attention("model.layers", {"self_attn.indexer.wq_b.weight": HIDDEN}, range(1))
    assert plan(source, target).suggestions == ()


def test_own_names_that_share_a_vocabulary_concept_pair() -> None:
    # embed_out and lm_head both name the output head; no word of theirs is shared.
    source = attention("gpt_neox.layers", {}) + [t("embed_out.weight", 64, HIDDEN)]
    target = attention("gpt_neox.layers", {}) + [t("lm_head.weight", 64, HIDDEN)]
    assert pairs(plan(source, target)) == {"embed_out.weight": "lm_head.weight"}


def test_a_layer_named_by_its_kind_is_named_by_its_parent() -> None:
    # intermediate.dense is the MLP's first layer: "dense" alone says only what kind it is.
    source = attention("layers", {"intermediate.dense.weight": INNER * HIDDEN}, range(1))
    target = attention("layers", {"mlp.fc1.weight": INNER * HIDDEN}, range(1))
    assert pairs(plan(source, target)) == {"layers.0.intermediate.dense.weight":
                                           "layers.0.mlp.fc1.weight"}
    # ... but output.dense (the attention's or the MLP's output) shares no concept with fc1.
    source = attention("layers", {"output.dense.weight": INNER * HIDDEN}, range(1))
    assert plan(source, target).suggestions == ()
