"""The field's naming conventions as rename evidence inside blocks, and the traps they avoid."""

from __future__ import annotations

from tests.helpers import t

from ckptdiff.manifest import TensorInfo
from ckptdiff.rename.plan import plan_renames
from ckptdiff.rename.vocabulary import key_concepts

LAYERS = 3
Layout = dict[str, tuple[int, ...]]


def pairs(source: list[TensorInfo], target: list[TensorInfo]) -> dict[str, str]:
    plan = plan_renames(source, target, source_all=source, target_all=target)
    return {s.source_key: s.target_key for s in plan.suggestions}


def blocks(prefix: str, layout: Layout) -> list[TensorInfo]:
    return [t(f"{prefix}.{i}.{name}", *shape) for i in range(LAYERS)
            for name, shape in layout.items()]


def expected(source: str, target: str, names: dict[str, str]) -> dict[str, str]:
    return {f"{source}.{i}.{a}": f"{target}.{i}.{b}" for i in range(LAYERS)
            for a, b in names.items()}


SQUARE = (16, 16)


def test_meta_w_prefixed_attention_and_a_bare_projection_inside_attention() -> None:
    # LLaMA's wq/wk/wv, timm's attn.proj (the output), DeepSeek's wkv: w + the name.
    source = blocks("blocks", {"attn.wq.weight": SQUARE, "attn.wk.weight": SQUARE,
                               "attn.wv.weight": SQUARE, "attn.proj.weight": SQUARE,
                               "attn.wkv.weight": (8, 16)})
    target = blocks("model.layers", {
        "self_attn.q_proj.weight": SQUARE, "self_attn.k_proj.weight": SQUARE,
        "self_attn.v_proj.weight": SQUARE, "self_attn.o_proj.weight": SQUARE,
        "self_attn.kv_proj.weight": (8, 16)})
    assert pairs(source, target) == expected("blocks", "model.layers", {
        f"attn.{a}.weight": f"self_attn.{b}.weight" for a, b in (
            ("wq", "q_proj"), ("wk", "k_proj"), ("wv", "v_proj"), ("proj", "o_proj"),
            ("wkv", "kv_proj"))})


def test_only_a_bare_projection_right_inside_attention_reads_as_its_output() -> None:
    assert "o" in key_concepts(("h", "0", "attn", "c_proj", "weight"))
    assert "o" in key_concepts(("layers", "0", "attention", "dense", "weight"))
    # nn.MultiheadAttention's in_proj is the input; an MLP's proj is no attention output.
    assert "o" not in key_concepts(("h", "0", "attn", "in_proj", "weight"))
    assert "o" not in key_concepts(("h", "0", "mlp", "proj", "weight"))
    assert "o" not in key_concepts(("h", "0", "attn", "q", "proj", "weight"))
    # BERT: the block's own output.dense is the MLP's second linear, attention's is attention's.
    assert key_concepts(("layer", "0", "output", "dense", "bias")) == {"mlp", "proj"}
    assert "o" in key_concepts(("layer", "0", "attention", "output", "dense", "bias"))


def test_bert_block_output_is_the_mlp_and_numbered_norms_follow_before_and_after() -> None:
    # Pixio: BERT-style names against ViT-style ones; every bias is [16] but fc1's.
    layout = {"attention.attention.query": 16, "attention.attention.key": 16,
              "attention.output.dense": 16, "intermediate.dense": 64, "output.dense": 16,
              "norm1": 16, "norm2": 16}
    source = [t(f"encoder.layer.{i}.{name}.{leaf}", size, *(() if leaf == "bias" else (16,)))
              for i in range(LAYERS) for name, size in layout.items()
              for leaf in ("weight", "bias")]
    names = {"attention.attention.query": "attention.q_proj",
             "attention.attention.key": "attention.k_proj",
             "attention.output.dense": "attention.o_proj", "intermediate.dense": "mlp.fc1",
             "output.dense": "mlp.fc2", "norm1": "layernorm_before", "norm2": "layernorm_after"}
    target = [t(f"layers.{i}.{names[name]}.{leaf}", size, *(() if leaf == "bias" else (16,)))
              for i in range(LAYERS) for name, size in layout.items()
              for leaf in ("weight", "bias")]
    found = pairs(source, target)
    for i in range(LAYERS):
        for name, new in names.items():
            for leaf in ("weight", "bias"):
                assert found[f"encoder.layer.{i}.{name}.{leaf}"] == f"layers.{i}.{new}.{leaf}"


def test_sublayer_norms_decline_when_both_readings_fit_the_targets() -> None:
    # input (before attention), post_attention (after it / before the MLP), post_mlp (after
    # it): "before its sublayer" and "after its sublayer" both place attn_norm and ffn_norm.
    source = blocks("layers", {"attn_norm.weight": (16,), "ffn_norm.weight": (16,),
                               "attention.wq.weight": SQUARE, "attention.wk.weight": SQUARE})
    target = blocks("model.layers", {
        "input_layernorm.weight": (16,), "post_attention_layernorm.weight": (16,),
        "post_mlp_layernorm.weight": (16,), "self_attn.q_proj.weight": SQUARE,
        "self_attn.k_proj.weight": SQUARE})
    found = pairs(source, target)
    assert not any("norm" in key for key in found)
    assert found["layers.0.attention.wq.weight"] == "model.layers.0.self_attn.q_proj.weight"


def test_meta_feed_forward_w1_w2_w3_with_metas_shapes() -> None:
    source = blocks("layers", {"feed_forward.w1.weight": (24, 16),
                               "feed_forward.w2.weight": (16, 24),
                               "feed_forward.w3.weight": (24, 16)})
    target = blocks("model.layers", {"mlp.gate_proj.weight": (24, 16),
                                     "mlp.down_proj.weight": (16, 24),
                                     "mlp.up_proj.weight": (24, 16)})
    assert pairs(source, target) == expected("layers", "model.layers", {
        "feed_forward.w1.weight": "mlp.gate_proj.weight",
        "feed_forward.w2.weight": "mlp.down_proj.weight",
        "feed_forward.w3.weight": "mlp.up_proj.weight"})


def test_numbered_feed_forward_linears_without_metas_structure_are_not_guessed() -> None:
    # xformers' SwiGLU: w3 is the down projection; w1/w2 are gate/up by a convention the
    # names do not state (Qwen's w2 is its gate). Shapes tie them: neither is paired.
    source = blocks("layers", {"ffn.w1.weight": (24, 16), "ffn.w2.weight": (24, 16),
                               "ffn.w3.weight": (16, 24)})
    target = blocks("model.layers", {"mlp.gate_proj.weight": (24, 16),
                                     "mlp.up_proj.weight": (24, 16),
                                     "mlp.down_proj.weight": (16, 24)})
    found = pairs(source, target)
    assert not any(key.endswith(("w1.weight", "w2.weight")) for key in found)
    # Meta's names with one linear missing: no structure, no reading.
    source = blocks("layers", {"ffn.w1.weight": (24, 16), "ffn.w3.weight": (24, 16)})
    found = pairs(source, target)
    assert not any(key.endswith(("w1.weight", "w3.weight")) for key in found)


def test_numbered_norms_pair_onto_the_same_numbers_only() -> None:
    source = blocks("blocks", {"ln1.weight": (16,), "ln2.weight": (16,),
                               "attn.wq.weight": SQUARE})
    target = blocks("model.layer", {"norm1.weight": (16,), "norm2.weight": (16,),
                                    "attention.q_proj.weight": SQUARE})
    assert pairs(source, target) == expected("blocks", "model.layer", {
        "ln1.weight": "norm1.weight", "ln2.weight": "norm2.weight",
        "attn.wq.weight": "attention.q_proj.weight"})
    # 0-based against 1-based numbers: which is which would be a guess.
    source = blocks("h", {"mlp.c_fc_0.weight": (24, 16), "mlp.c_fc_1.weight": (24, 16)})
    target = blocks("layers", {"mlp.fc1.weight": (24, 16), "mlp.fc2.weight": (24, 16)})
    assert pairs(source, target) == {}


def test_a_leaf_named_x_bias_is_the_bias_of_x() -> None:
    # VideoMAE keeps q_bias/v_bias beside query/value, which have no bias of their own.
    source = blocks("encoder.layer", {"attention.attention.q_bias": (16,),
                                      "attention.attention.v_bias": (16,),
                                      "attention.output.dense.bias": (16,)})
    target = blocks("encoder.layer", {"attention.attention.query.bias": (16,),
                                      "attention.attention.value.bias": (16,),
                                      "attention.output.dense.bias": (16,)})
    found = {a: b for a, b in pairs(source, target).items() if a != b}
    assert found == expected("encoder.layer", "encoder.layer", {
        "attention.attention.q_bias": "attention.attention.query.bias",
        "attention.attention.v_bias": "attention.attention.value.bias"})


def test_the_nearer_path_breaks_a_tie_of_shared_concepts() -> None:
    # DeepSeek V4: the attention's kv and its compressor's kv, one shape, one set of concepts.
    source = blocks("model.layers", {"attn.wkv.weight": (8, 16),
                                     "attn.compressor.wkv.weight": (8, 16),
                                     "attn.compressor.wgate.weight": (8, 16)})
    target = blocks("model.layers", {"self_attn.kv_proj.weight": (8, 16),
                                     "self_attn.compressor.kv_proj.weight": (8, 16),
                                     "self_attn.compressor.gate_proj.weight": (8, 16)})
    assert pairs(source, target) == expected("model.layers", "model.layers", {
        "attn.wkv.weight": "self_attn.kv_proj.weight",
        "attn.compressor.wkv.weight": "self_attn.compressor.kv_proj.weight",
        "attn.compressor.wgate.weight": "self_attn.compressor.gate_proj.weight"})


def test_jax_leaf_b_is_a_bias_and_a_scale_pairs_with_a_scale() -> None:
    # Mistral's ssmax_scaling.b/.s beside softmax_scaling.bias/.scale, one shape for both:
    # once b is read as the bias, the scale is the one scale left.
    source = blocks("layers", {"attention.ssmax_scaling.b": (2,),
                               "attention.ssmax_scaling.s": (2,),
                               "attention.wq.weight": SQUARE})
    target = blocks("model.layers", {"self_attn.softmax_scaling.bias": (2,),
                                     "self_attn.softmax_scaling.scale": (2,),
                                     "self_attn.q_proj.weight": SQUARE})
    assert pairs(source, target) == expected("layers", "model.layers", {
        "attention.ssmax_scaling.b": "self_attn.softmax_scaling.bias",
        "attention.ssmax_scaling.s": "self_attn.softmax_scaling.scale",
        "attention.wq.weight": "self_attn.q_proj.weight"})


def test_layer_scale_words_and_a_position_table_that_is_no_bias() -> None:
    # Sapiens' attention gamma is the block's layer scale; DeepSeek's ape its position table.
    source = blocks("blocks", {"attn.gamma.weight": (16,), "attn.compressor.ape": (128, 8),
                               "attn.wq.weight": SQUARE})
    target = blocks("model.layer", {"layer_scale1.lambda1": (16,),
                                    "attention.compressor.position_bias": (128, 8),
                                    "attention.q_proj.weight": SQUARE})
    assert pairs(source, target) == expected("blocks", "model.layer", {
        "attn.gamma.weight": "layer_scale1.lambda1",
        "attn.compressor.ape": "attention.compressor.position_bias",
        "attn.wq.weight": "attention.q_proj.weight"})


def test_a_scale_and_a_norm_of_one_shape_are_not_taken_for_each_other() -> None:
    # Two [16] vectors, a layer scale and a norm, each against the other's kind only.
    source = blocks("blocks", {"attn.gamma.weight": (16,), "attn.wq.weight": SQUARE,
                               "attn.wk.weight": SQUARE})
    target = blocks("model.layer", {"norm1.weight": (16,), "attention.q_proj.weight": SQUARE,
                                    "attention.k_proj.weight": SQUARE})
    found = pairs(source, target)
    assert not any("gamma" in key for key in found)
    assert found["blocks.1.attn.wk.weight"] == "model.layer.1.attention.k_proj.weight"


def test_two_targets_as_near_and_as_alike_leave_the_key_unpaired() -> None:
    source = blocks("layers", {"attn.wkv.weight": (8, 16), "attn.wq.weight": SQUARE})
    target = blocks("model.layers", {"self_attn.kv_proj.weight": (8, 16),
                                     "self_attn.kv_b_proj.weight": (8, 16),
                                     "self_attn.q_proj.weight": SQUARE})
    found = pairs(source, target)
    assert not any("wkv" in key for key in found)
    assert found["layers.2.attn.wq.weight"] == "model.layers.2.self_attn.q_proj.weight"
