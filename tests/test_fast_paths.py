"""The fast paths of a large diff give exactly what the general code gives.

Frozen records built through ``records.fast_constructor``, the collector's promotion after a
pause, the one-wrapper view of ``make_view``, the after-fix revise of one literal-prefix rule,
the parity verdict counted at C speed and the policy's short-circuiting failure check.
"""

from __future__ import annotations

import gc
import pickle
import re
from dataclasses import FrozenInstanceError, dataclass, replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ckptdiff import collector
from ckptdiff.ci.policy import Policy
from ckptdiff.diffing.outlook import _revise, parity_verdict
from ckptdiff.diffing.report import Finding, Report, Side, TensorSide
from ckptdiff.manifest import TensorInfo
from ckptdiff.records import fast_constructor
from ckptdiff.rename.explain import Step
from ckptdiff.rename.keys import KeyView, make_view
from ckptdiff.rename.results import Rule, Suggestion

TEXT = st.text(max_size=12)
SIDES = st.none() | st.builds(TensorSide, st.tuples(st.integers(0, 9)), st.just("float32"),
                              st.none() | st.just("cpu"))
KINDS = st.sampled_from(["missing", "unexpected", "shape", "dtype", "optimizer"])
SEVERITIES = st.sampled_from(["error", "warning", "info"])
FINDING_ARGS = st.tuples(KINDS, TEXT, SEVERITIES, SIDES, SIDES, st.none() | TEXT,
                         st.none() | TEXT, st.none() | st.tuples(st.none() | TEXT, TEXT))
FINDINGS = FINDING_ARGS.map(lambda args: Finding(*args))
new_finding = fast_constructor(Finding)
new_suggestion = fast_constructor(Suggestion)


@given(FINDING_ARGS)
def test_a_fast_finding_is_the_one_its_class_builds(args: tuple[object, ...]) -> None:
    fast, built = new_finding(*args), Finding(*args)  # type: ignore[arg-type]
    assert type(fast) is Finding
    assert fast == built and hash(fast) == hash(built) and repr(fast) == repr(built)
    assert pickle.loads(pickle.dumps(fast)) == built
    assert replace(fast, key="other") == replace(built, key="other")
    with pytest.raises(FrozenInstanceError):
        fast.key = "other"  # type: ignore[misc]


def test_fast_constructors_take_keywords_and_defaults() -> None:
    assert new_suggestion("a", "b", 0.9, rule="r") == Suggestion("a", "b", 0.9, "r")
    assert new_suggestion("a", "b", 0.9, "r", "transpose", (1, 0)).axes == (1, 0)
    with pytest.raises(TypeError):
        new_suggestion("a", "b")  # a field without default is missing, as for the class


def test_only_frozen_slotted_dataclasses_get_a_fast_constructor() -> None:
    @dataclass(frozen=True)
    class WithDict:
        value: int

    @dataclass(slots=True)
    class Mutable:
        value: int

    @dataclass(frozen=True, slots=True)
    class Checked:
        value: int

        def __post_init__(self) -> None:
            raise ValueError("checked")

    for cls in (WithDict, Mutable, Checked, TensorInfo):
        with pytest.raises(TypeError):
            fast_constructor(cls)


def test_the_collector_is_as_it_was_after_a_pause() -> None:
    assert gc.isenabled()
    with collector.paused():
        assert not gc.isenabled()
        with collector.paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # (the outer pause still holds)
    assert gc.isenabled()
    young: list[list[int]] = [[] for _ in range(100)]
    collector.promote_young()
    assert gc.get_count()[0] < 50 and gc.is_tracked(young[0])
    assert gc.get_freeze_count() == 0  # (moved to the oldest generation, not left frozen)


def test_promotion_leaves_someone_elses_frozen_objects_frozen() -> None:
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with collector.paused():
            pass
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()


def test_one_wrapper_before_plain_segments_is_stripped() -> None:
    info = TensorInfo("module.encoder.layer.0.dense.weight", (2, 2), "float32")
    view = make_view(info)
    assert view == KeyView(info.key, "encoder.layer.0.dense.weight",
                           ("encoder", "layer", "0", "dense", "weight"), info,
                           (Step("wrapper_prefix", "module.", ""),))


@pytest.mark.parametrize(("key", "canonical", "parts"), [
    # Not the one-wrapper case: the general paths decide, as before.
    ("module.module.a.weight", "a.weight", (Step("wrapper_prefix", "module.module.", ""),)),
    ("module.a.gamma", "a.weight", (Step("wrapper_prefix", "module.", ""),
                                    Step("synonym", "gamma", "weight"))),
    ("module.weight", "weight", (Step("wrapper_prefix", "module.", ""),)),
    ("module.a._orig_mod.weight", "a.weight", (Step("wrapper_prefix", "module.", ""),
                                               Step("wrapper_segment", "_orig_mod", ""))),
    ("module.base_model.model.a.weight", "a.weight",
     (Step("wrapper_prefix", "module.base_model.model.", ""),)),
    ("module.a.parametrizations.weight.original0", "a.weight_g",
     (Step("wrapper_prefix", "module.", ""),
      Step("weight_norm", "parametrizations.weight.original0", "weight_g"))),
])
def test_other_wrapped_keys_keep_their_general_views(key: str, canonical: str,
                                                     parts: tuple[Step, ...]) -> None:
    view = make_view(TensorInfo(key, (2,), "float32"))
    assert (view.canonical, set(view.parts)) == (canonical, set(parts))
    assert view.tokens == tuple(canonical.split("."))


KEYS = st.lists(st.sampled_from(["module", "module.", "a", "b.", "\\", "$", "\n", "1"]),
                max_size=6).map("".join)


@given(st.lists(KEYS, max_size=6), st.sampled_from(["module.", "a.", "$", "\\"]),
       st.sampled_from(["", "b.", "x"]))
def test_a_literal_prefix_rule_revises_as_its_regex(keys: list[str], prefix: str,
                                                    replacement: str) -> None:
    rule = Rule("^" + re.escape(prefix), replacement, 1)
    revise = _revise([rule])
    assert [revise(k) for k in keys] == [re.sub(rule.pattern, replacement, k) for k in keys]


@given(st.lists(FINDINGS, max_size=12))
def test_the_parity_verdict_counts_kinds_in_order_of_first_error(findings: list[Finding]
                                                                 ) -> None:
    verdict = parity_verdict(findings)
    errors = [f for f in findings if f.severity == "error"]
    assert verdict.loads == (not errors)
    assert verdict.keys == tuple(dict.fromkeys(f.key for f in errors))
    if errors:
        kinds: dict[str, int] = {}
        for finding in errors:
            kinds[finding.kind] = kinds.get(finding.kind, 0) + 1
        counts = ", ".join(f"{n} {kind}" for kind, n in kinds.items())
        assert f": {counts} (" in verdict.reason


@given(st.lists(FINDINGS, max_size=8), st.sampled_from(["error", "warning"]))
def test_the_policy_fails_where_the_report_has_failing_findings(findings: list[Finding],
                                                                fail_on: str) -> None:
    side = Side("a", "torch", 0, None)
    report = Report(side, side, 0, tuple(findings))
    assert Policy(fail_on=fail_on).fails(report) == bool(report.failing(fail_on))
