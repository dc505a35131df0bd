"""Segment edits between keys: the shortcuts for common shapes agree with the general alignment."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ckptdiff.rename.ops import Signature, apply, edits

TOKENS = st.sampled_from(["module", "model", "encoder", "layer", "0", "1", "12", "attn",
                          "weight", "bias", "gamma", "beta", "w1", "w2", "fc"])
KEYS = st.lists(TOKENS, min_size=1, max_size=6).map(".".join)


@given(KEYS, KEYS)
def test_edits_turn_the_source_into_the_target(source: str, target: str) -> None:
    assert apply(source, edits(source, target)) == target


@given(st.lists(TOKENS, min_size=1, max_size=5).map(".".join), TOKENS, TOKENS)
def test_a_changed_leaf_is_one_substitution_at_the_end(body: str, old: str, new: str) -> None:
    found = edits(f"{body}.{old}", f"{body}.{new}")
    if old == new:
        assert found == []
    else:
        assert [e.signature for e in found] == [Signature("sub", "end", old, new, ".", "")]


def test_a_stripped_wrapper_and_a_legacy_leaf_are_two_edits() -> None:
    found = edits("module.encoder.layer.3.LayerNorm.gamma", "encoder.layer.3.LayerNorm.weight")
    assert [e.signature for e in found] == [Signature("del", "start", "module.", "", "", ""),
                                            Signature("sub", "end", "gamma", "weight", ".", "")]
    added = edits("encoder.layer.3.LayerNorm.gamma", "model.encoder.layer.3.LayerNorm.weight")
    assert [e.signature for e in added] == [Signature("ins", "start", "", "model.", "", ""),
                                            Signature("sub", "end", "gamma", "weight", ".", "")]


def test_a_prefix_whose_segment_recurs_takes_the_general_alignment() -> None:
    # "encoder" opens both keys: the shortcut must not claim a deleted first segment.
    found = edits("encoder.encoder.layer.gamma", "encoder.layer.weight")
    assert apply("encoder.encoder.layer.gamma", found) == "encoder.layer.weight"
    assert found[0].signature.where == "middle"


def test_a_key_that_is_only_a_wrapper_name_does_not_crash_the_engine() -> None:
    from ckptdiff.manifest import TensorInfo
    from ckptdiff.rename.plan import plan_renames

    plan = plan_renames([TensorInfo("module", (3,), "float32")],
                        [TensorInfo("model", (3,), "float32")])
    assert all(s.source_key == "module" for s in plan.suggestions)


def test_dataparallel_around_peft_strips_both_wrappers_on_every_key() -> None:
    # Keys with a base_layer segment and keys without (the head) normalize alike.
    from ckptdiff.manifest import TensorInfo
    from ckptdiff.rename.plan import plan_renames

    source = [TensorInfo("module.base_model.model.classifier.weight", (3, 8), "float32"),
              TensorInfo("module.base_model.model.encoder.q.base_layer.weight", (8, 8), "float32")]
    target = [TensorInfo("classifier.weight", (3, 8), "float32"),
              TensorInfo("encoder.q.weight", (8, 8), "float32")]
    plan = plan_renames(source, target)
    assert {(s.source_key, s.target_key) for s in plan.suggestions} == {
        (source[0].key, "classifier.weight"), (source[1].key, "encoder.q.weight")}
    assert all(s.confidence >= 0.99 for s in plan.suggestions)
