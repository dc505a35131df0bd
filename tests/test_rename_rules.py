"""Regex rules: every rule set is verified, performs its pairs, and leaves other keys alone."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st
from tests.helpers import manifest, t

from ckptdiff.diffing.match import diff_manifests
from ckptdiff.rename.ops import apply, edits
from ckptdiff.rename.rules import synthesize
from ckptdiff.rename.snippet import literal, python_snippet, revise_keys

TOKENS = st.sampled_from(["a", "b", "module", "0", "1", "12", "weight", "bias", "attn", "x_y"])
KEYS = st.lists(TOKENS, min_size=1, max_size=6).map(".".join)


def run(rules: list[tuple[str, str]], key: str) -> str:
    for pattern, replacement in rules:
        key = re.sub(pattern, replacement, key)
    return key


@settings(max_examples=300, deadline=None)
@given(KEYS, KEYS)
def test_segment_edits_turn_any_key_into_any_other(source: str, target: str) -> None:
    assert apply(source, edits(source, target)) == target


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(KEYS, KEYS), min_size=1, max_size=6, unique_by=lambda p: p[0]),
       st.lists(KEYS, max_size=6, unique=True))
def test_synthesized_rules_perform_the_pairs_and_spare_fitting_keys(
        pairs: list[tuple[str, str]], others: list[str]) -> None:
    pairs = [(a, b) for a, b in pairs if a != b]
    targets = [b for _, b in pairs]
    if not pairs or len(set(targets)) != len(targets):
        return
    sources = {a for a, _ in pairs}
    fixed = [k for k in others if k not in sources and k not in targets]
    universe = [a for a, _ in pairs] + fixed
    rules = [(r.pattern, r.replacement) for r in synthesize(pairs, universe,
                                                            set(targets) | set(fixed))]
    for key in fixed:
        assert run(rules, key) == key
    reached = [(a, b) for a, b in pairs if run(rules, a) == b]
    # Rules are verified as they are built: a pair they do not reach stays a suggestion only,
    # and what they rename never collides.
    renamed = [run(rules, k) for k in universe]
    assert len(set(renamed)) == len(renamed)
    # Renames among the pairs themselves (a → b while b → c) may need an order the rules cannot
    # take (a cycle); anything else is always reached.
    if not sources & set(targets):
        assert reached == pairs


def test_prefix_strip_is_one_readable_rule() -> None:
    pairs = [(f"module.layer.{i}.weight", f"layer.{i}.weight") for i in range(12)]
    rules = synthesize(pairs, [a for a, _ in pairs] + ["head.weight"], {"head.weight"})
    assert [(r.pattern, r.replacement, r.matches) for r in rules] == [("^module\\.", "", 12)]


def test_rules_never_rename_a_key_that_already_loads() -> None:
    # "\\.gamma$" would also rename ln.gamma, which the target expects as is: context is added.
    pairs = [("enc.norm.gamma", "enc.norm.weight"), ("dec.norm.gamma", "dec.norm.weight")]
    universe = [a for a, _ in pairs] + ["ln.gamma"]
    rules = [(r.pattern, r.replacement) for r in synthesize(pairs, universe, {"ln.gamma"})]
    assert run(rules, "ln.gamma") == "ln.gamma"
    assert all(run(rules, a) == b for a, b in pairs)


def test_snippet_is_valid_python_that_fixes_the_keys() -> None:
    source = manifest(t("module.conv.weight", 4, 3), t("module.fc.weight", 2, 4),
                      t("dense/kernel", 4, 2))
    target = manifest(t("conv.weight", 4, 3), t("fc.weight", 2, 4), t("dense.weight", 2, 4))
    report = diff_manifests(source, target)
    code = "\n".join(python_snippet(report.rules, report.suggestions))
    namespace: dict[str, object] = {}
    exec(compile(code, "<snippet>", "exec"), namespace)

    class Value:
        def __init__(self, name: str) -> None:
            self.name = name
            self.axes: tuple[int, ...] = ()

        def permute(self, *axes: int) -> Value:
            self.axes = axes
            return self

        def contiguous(self) -> Value:
            return self

    revise = namespace["revise"]
    assert callable(revise)
    fixed = revise({k: Value(k) for k in ("module.conv.weight", "module.fc.weight",
                                          "dense/kernel")})
    assert set(fixed) == {"conv.weight", "fc.weight", "dense.weight"}
    assert fixed["dense.weight"].axes == (1, 0)
    assert "revise_keys = [" in "\n".join(revise_keys(report.rules))


def test_literals_round_trip() -> None:
    for text in ("^module\\.", "", "a'b", '\\."', "\\g<1>x"):
        assert eval(literal(text)) == text
