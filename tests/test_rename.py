"""Prefix rename rules: confident where the data says so, silent where it cannot know."""

from __future__ import annotations

import re

from tests.helpers import t

from ckptdiff.rename.plan import suggest_renames


def pairs(unexpected, missing):  # type: ignore[no-untyped-def]
    suggestions, rules = suggest_renames(unexpected, missing)
    return {(s.source_key, s.target_key) for s in suggestions}, rules


def test_strip_module_prefix() -> None:
    keys = ["conv.weight", "conv.bias", "fc.weight"]
    found, rules = pairs([t("module." + k, 2) for k in keys], [t(k, 2) for k in keys])
    assert found == {("module." + k, k) for k in keys}
    assert [(r.pattern, r.replacement, r.matches) for r in rules] == [("^module\\.", "", 3)]
    assert all(re.sub(r.pattern, r.replacement, "module.x") == "x" for r in rules)


def test_stacked_wrappers_strip_as_one_rule() -> None:
    keys = ["a.weight", "b.weight"]
    suggestions, rules = suggest_renames([t("module._orig_mod." + k, 3) for k in keys],
                                         [t(k, 3) for k in keys])
    assert {s.target_key for s in suggestions} == set(keys)
    assert rules[0].pattern == "^" + re.escape("module._orig_mod.")
    assert all(s.confidence >= 0.99 for s in suggestions)


def test_add_prefix() -> None:
    found, rules = pairs([t("layer.weight", 4)], [t("model.layer.weight", 4)])
    assert found == {("layer.weight", "model.layer.weight")}
    assert rules[0].replacement == "model."


def test_shape_mismatch_is_never_paired() -> None:
    found, _ = pairs([t("module.fc.weight", 2, 3)], [t("fc.weight", 3, 2)])
    assert found == set()


def test_string_to_float_is_never_paired() -> None:
    found, _ = pairs([t("module.names", 3, dtype="string")], [t("names", 3)])
    assert found == set()


def test_equally_good_rivals_give_no_suggestion() -> None:
    unexpected = [t("fc.weight", 2, 2), t("fc.bias", 2)]
    missing = [t("head1.weight", 2, 2), t("head1.bias", 2), t("head2.weight", 2, 2),
               t("head2.bias", 2)]
    found, rules = pairs(unexpected, missing)
    assert found == set() and rules == []


def test_single_weak_pair_from_unknown_prefix_is_not_suggested() -> None:
    found, _ = pairs([t("fc.weight", 2, 2)], [t("head.weight", 2, 2)])
    assert found == set()


def test_each_key_used_once() -> None:
    unexpected = [t("module.a.w", 2), t("a.w", 2)]
    suggestions, _ = suggest_renames(unexpected, [t("model.a.w", 2)])
    assert len(suggestions) <= 1
