"""The rename engine's strategies, one at a time, and the ways it refuses to guess."""

from __future__ import annotations

from tests.helpers import plan, t

from ckptdiff.rename.assign import Candidate, assign
from ckptdiff.rename.keys import make_view
from ckptdiff.rename.plan import RenamePlan


def pairs(result: RenamePlan) -> set[tuple[str, str]]:
    return {(s.source_key, s.target_key) for s in result.suggestions}


def test_wrapper_segments_inside_keys_and_peft_prefix() -> None:
    source = [t("base_model.model.enc.0._checkpoint_wrapped_module.q.base_layer.weight", 4, 4),
              t("base_model.model.enc.0._checkpoint_wrapped_module.q.lora_A.default.weight", 2, 4)]
    result = plan(source, [t("enc.0.q.weight", 4, 4)])
    assert pairs(result) == {(source[0].key, "enc.0.q.weight")}
    (suggestion,) = result.suggestions
    assert suggestion.confidence == 0.99
    assert "strip prefix 'base_model.model.'" in suggestion.rule
    assert "drop wrapper segment 'base_layer'" in suggestion.rule


def test_learned_substitution_abbreviation_beats_unrelated_name() -> None:
    source = [t(f"l.{i}.{w}.weight", 8, 8) for i in range(3) for w in ("q", "k", "v")]
    target = [t(f"l.{i}.{w}.weight", 8, 8) for i in range(3) for w in ("query", "key", "value")]
    found = pairs(plan(source, target))
    assert found == {(f"l.{i}.{a}.weight", f"l.{i}.{b}.weight") for i in range(3)
                     for a, b in (("q", "query"), ("k", "key"), ("v", "value"))}


def test_unrelated_same_shaped_renames_are_a_tie_not_a_guess() -> None:
    source = [t(f"layers.{i}.ffn.w1.weight", 16, 8) for i in range(4)]
    source += [t(f"layers.{i}.ffn.w3.weight", 16, 8) for i in range(4)]
    target = [t(f"layers.{i}.ffn.gate.weight", 16, 8) for i in range(4)]
    target += [t(f"layers.{i}.ffn.up.weight", 16, 8) for i in range(4)]
    result = plan(source, target)
    assert result.suggestions == ()
    reasons = {u.source_key: u for u in result.unpaired if u.source_key}
    assert "equally good candidates" in reasons["layers.0.ffn.w1.weight"].reason
    assert set(reasons["layers.0.ffn.w1.weight"].candidates) == {
        "layers.0.ffn.gate.weight", "layers.0.ffn.up.weight"}


def test_prefix_and_legacy_leaf_compose() -> None:
    keys = [f"encoder.layer.{i}.LayerNorm" for i in range(3)]
    source = [t(f"bert.{k}.gamma", 4) for k in keys] + [t(f"bert.{k}.beta", 4) for k in keys]
    source += [t(f"bert.encoder.layer.{i}.dense.weight", 4, 4) for i in range(3)]
    target = [t(f"{k}.weight", 4) for k in keys] + [t(f"{k}.bias", 4) for k in keys]
    target += [t(f"encoder.layer.{i}.dense.weight", 4, 4) for i in range(3)]
    found = pairs(plan(source, target))
    assert ("bert.encoder.layer.1.LayerNorm.gamma", "encoder.layer.1.LayerNorm.weight") in found
    assert len(found) == 9


def test_index_shift_moves_whole_blocks_and_never_displaces_a_fitting_key() -> None:
    source = [t("net.0.weight", 8, 4), t("net.2.weight", 16, 8), t("net.4.weight", 2, 16)]
    target = [t("net.0.weight", 8, 4), t("net.2.weight", 8, 8), t("net.4.weight", 16, 8),
              t("net.6.weight", 2, 16)]
    result = plan(source, target)
    assert pairs(result) == {("net.2.weight", "net.4.weight"), ("net.4.weight", "net.6.weight")}
    assert all("shift indices of 'net.N' by +2" in s.rule for s in result.suggestions)
    # Applied in order, the rules never rename a key twice.
    assert [r.pattern for r in result.rules] == ["^net\\.4\\.", "^net\\.2\\."]


def test_identical_layers_removed_pairs_nothing() -> None:
    source = [t(f"net.{i}.weight", 8, 8) for i in range(4)]
    assert plan(source, source[:3]).suggestions == ()


def test_keras_kernel_into_torch_weight_is_transposed_or_permuted() -> None:
    source = [t("dense/kernel", 4, 8), t("dense/bias", 8), t("conv/kernel", 3, 3, 2, 5)]
    target = [t("dense.weight", 8, 4), t("dense.bias", 8), t("conv.weight", 5, 2, 3, 3)]
    by_key = {s.source_key: s for s in plan(source, target).suggestions}
    assert (by_key["dense/kernel"].transform, by_key["dense/kernel"].axes) == ("transpose", (1, 0))
    assert (by_key["conv/kernel"].transform, by_key["conv/kernel"].axes) == ("permute",
                                                                            (3, 2, 0, 1))
    assert by_key["dense/bias"].transform is None


def test_a_square_kernel_that_does_not_transpose_is_not_paired() -> None:
    result = plan([t("dense/kernel", 4, 8)], [t("dense.weight", 4, 8)])
    assert result.suggestions == ()
    assert "after transpose" in result.unpaired[0].reason


def test_near_miss_names_the_rule_and_the_shapes() -> None:
    result = plan([t("module.head.weight", 5, 16)], [t("head.weight", 10, 16)])
    (source_note, target_note) = result.unpaired
    assert source_note.source_key == "module.head.weight"
    assert source_note.reason == ("strip prefix 'module.' pairs it with 'head.weight', but "
                                  "shapes differ: [5, 16] vs [10, 16]")
    assert target_note.target_key == "head.weight"


def test_weak_evidence_is_explained_not_suggested() -> None:
    result = plan([t("pooler.weight", 4, 4), t("pooler.bias", 4)],
                  [t("head.weight", 4, 4), t("head.bias", 4)])
    assert result.suggestions == ()
    assert "only 2 keys support that rename" in result.unpaired[0].reason


def test_assignment_keeps_only_pairs_every_best_matching_agrees_on() -> None:
    def cand(s: str, t_: str, weight: int) -> Candidate:
        return Candidate(make_view(t(s, 1)), make_view(t(t_, 1)), (), None, 0.9, weight)

    # s2 can only be t2, so s1 must be t1: a deduction, not a guess.
    chosen, ties = assign([cand("s1", "t1", 5), cand("s1", "t2", 5), cand("s2", "t2", 5)])
    assert {(c.source.key, c.target.key) for c in chosen} == {("s1", "t1"), ("s2", "t2")}
    assert ties == []
    # Two equally good perfect matchings: nothing is forced.
    chosen, ties = assign([cand("a", "x", 3), cand("a", "y", 3), cand("b", "x", 3),
                           cand("b", "y", 3)])
    assert chosen == [] and {tie.key for tie in ties} == {"a", "b", "x", "y"}
    # A stronger edge wins outright.
    chosen, _ = assign([cand("a", "x", 9), cand("a", "y", 3)])
    assert [(c.source.key, c.target.key) for c in chosen] == [("a", "x")]


def test_large_pools_stay_fast_and_exact() -> None:
    keys = [f"encoder.layer.{i}.block.{j}.weight" for i in range(300) for j in range(20)]
    source = [t("backbone." + k, 4, 4) for k in keys]
    target = [t("trunk." + k, 4, 4) for k in keys]
    result = plan(source, target)
    assert len(result.suggestions) == len(keys)
    assert [(r.pattern, r.replacement, r.matches) for r in result.rules] == [
        ("^backbone\\.", "trunk.", len(keys))]
