"""Norms paired by the sublayer they belong to, and where their place words forbid it."""

from __future__ import annotations

from tests.helpers import t

from ckptdiff.manifest import TensorInfo
from ckptdiff.rename.plan import plan_renames

HIDDEN, LAYERS = 16, 3


def pairs(source: list[TensorInfo], target: list[TensorInfo]) -> dict[str, str]:
    plan = plan_renames(source, target, source_all=source, target_all=target)
    return {s.source_key: s.target_key for s in plan.suggestions}


def block(prefix: str, names: tuple[str, ...]) -> list[TensorInfo]:
    return [t(f"{prefix}.{i}.{name}.{leaf}", HIDDEN) for i in range(LAYERS) for name in names
            for leaf in ("weight", "bias")]


def test_norms_without_a_place_word_pair_with_the_blocks_post_norms_by_sublayer() -> None:
    # GTE: attn_ln/mlp_ln come after their sublayer; every target norm says "post".
    found = pairs(block("encoder.layer", ("attn_ln", "mlp_ln")),
                  block("layers", ("post_attention_layernorm", "post_mlp_layernorm")))
    assert len(found) == 4 * LAYERS
    for i in range(LAYERS):
        assert found[f"encoder.layer.{i}.attn_ln.weight"] == (
            f"layers.{i}.post_attention_layernorm.weight")
        assert found[f"encoder.layer.{i}.mlp_ln.bias"] == f"layers.{i}.post_mlp_layernorm.bias"


def test_norms_whose_target_places_differ_are_never_paired_by_sublayer_word() -> None:
    # Meta: attention_norm is the *input* norm of attention; the HF names place it as such.
    found = pairs(block("layers", ("attention_norm", "ffn_norm")),
                  block("model.layers", ("input_layernorm", "post_attention_layernorm")))
    assert all(not (s.endswith(("attention_norm.weight", "attention_norm.bias"))
                    and "post_attention" in v) for s, v in found.items())
