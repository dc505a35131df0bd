"""Score ckptdiff on the upstream-derived cases: renames, conversions and ``remap`` end to end.

A suggestion is right when the truth (:mod:`truth`, by values) renames its source key to its
target key. A conversion is right when its keys are the truth's parts and its ops, performed here
with torch (an oracle independent of ckptdiff's numpy code), give exactly the loaded tensors.
A case is fixed end to end when ``remap``'s file loads into a fresh model with
``load_state_dict(strict=True)`` and every tensor then equals ``from_pretrained``'s.

A true pair that is not suggested is either *missed* or *declined as ambiguous*: declined when an
``unpaired`` entry of its key gives ``readings`` (the explanations names and shapes allow) and
names the truth among its candidates (a rename's partner; every part of a join or split). Recall
is reported both ways: over all true pairs (the goals) and over the pairs not so declined.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tests.conversion_eval.models import Case
from tests.conversion_eval.oracle import perform
from tests.conversion_eval.stated import declined_only, fixes_once_stated
from tests.conversion_eval.truth import Truth, derive

from ckptdiff.diffing.match import diff_manifests
from ckptdiff.diffing.report import Report
from ckptdiff.readers import read
from ckptdiff.rename.results import Conversion, Suggestion
from ckptdiff.targets.resolve import resolve


@dataclass
class Score:
    """One case's outcome."""

    name: str
    renames: tuple[int, int, int]  # suggested, right, true
    conversions: tuple[int, int, int]  # suggested, right, true
    fixed: bool
    problems: list[str] = field(default_factory=list)
    report: Report | None = None
    # True pairs not suggested but declined as ambiguous with the truth among the candidates.
    declined: tuple[int, int] = (0, 0)  # renames, conversions
    # Only for a case not fixed whose every problem is declined: fixed once the user states the
    # true readings in a rules file (:mod:`stated`); None for every other case.
    stated: bool | None = None


def _conversion_right(conversion: Conversion, truth: Truth, case: Case) -> bool:
    if len(conversion.targets) == 1:
        parts = truth.joins.get(conversion.targets[0])
        if parts != frozenset(conversion.sources):
            return False
    elif truth.splits.get(conversion.sources[0]) != frozenset(conversion.targets):
        return False
    made = perform(conversion.ops, [case.saved[k] for k in conversion.sources])
    return len(made) == len(conversion.targets) and all(
        tuple(m.shape) == tuple(case.loaded[k].shape) and bool((m == case.loaded[k]).all())
        for m, k in zip(made, conversion.targets, strict=True))


def _equal_after(suggestion: Suggestion, case: Case) -> bool:
    """Whether the suggested pair loads the very values ``from_pretrained`` holds."""
    value = case.saved[suggestion.source_key]
    if suggestion.axes is not None:
        value = value.permute(*suggestion.axes)
    wanted = case.loaded.get(suggestion.target_key)
    return wanted is not None and tuple(value.shape) == tuple(wanted.shape) and bool(
        (value == wanted).all())


def score(case: Case, workdir: Path) -> Score:
    """Diff, check and remap one case."""
    truth = derive(case.saved, case.loaded)
    report = diff_manifests(read(case.checkpoint), resolve(case.model))
    problems: list[str] = []
    right_renames = constant_right = 0
    for s in report.suggestions:
        if truth.renames.get(s.source_key) == s.target_key:
            right_renames += 1
        elif s.source_key in truth.constant and _equal_after(s, case):
            constant_right += 1  # a zero buffer has no truth by values but loads the same
        else:
            problems.append(f"wrong rename: {s.source_key} -> {s.target_key}")
    suggested = {s.source_key for s in report.suggestions}
    declined_renames = 0
    for k, v in truth.renames.items():
        if k in suggested:
            continue
        why = _declined(report, k, v, frozenset({v})) or _declined(report, None, v,
                                                                   frozenset({k}))
        declined_renames += why is not None
        problems.append(f"declined (ambiguous): {k} -> {v}: {why}" if why
                        else f"missed rename: {k} -> {v}")
    right_conversions = 0
    for conversion in report.conversions:
        if _conversion_right(conversion, truth, case):
            right_conversions += 1
        else:
            problems.append(f"wrong conversion: {conversion.rule} -> {conversion.targets}")
    explained = {k for c in report.conversions for k in c.targets}
    open_conversions = [("join", None, k, parts) for k, parts in truth.joins.items()
                        if k not in explained]
    open_conversions += [("split", k, None, parts) for k, parts in truth.splits.items()
                         if not any(c.sources == (k,) for c in report.conversions)]
    declined_conversions = 0
    for kind, source, target, parts in open_conversions:
        why = _declined(report, source, target, parts)
        declined_conversions += why is not None
        problems.append(f"declined (ambiguous) {kind}: {source or target}: {why}" if why
                        else f"missed {kind}: {source or target}")
    fixed = _remap_fixes(case, workdir, problems)
    stated = (fixes_once_stated(case, report, truth, workdir, problems)
              if not fixed and declined_only(problems) else None)
    return Score(case.name, (len(report.suggestions), right_renames + constant_right,
                             len(truth.renames) + constant_right),
                 (len(report.conversions), right_conversions,
                  len(truth.joins) + len(truth.splits)), fixed, problems, report,
                 (declined_renames, declined_conversions), stated)


def _declined(report: Report, source: str | None, target: str | None,
              truth: frozenset[str]) -> str | None:
    """The reason of an ambiguous ``unpaired`` entry of the key that names ``truth``, if any."""
    for entry in report.unpaired:
        if (len(entry.readings) >= 2 and truth <= set(entry.candidates)
                and (entry.source_key, entry.target_key) == (source, target)):
            return entry.reason
    return None


def _remap_fixes(case: Case, workdir: Path, problems: list[str]) -> bool:
    from safetensors.torch import load_file

    from ckptdiff import remap
    from ckptdiff.errors import CkptdiffError

    output = workdir / f"{case.name}.fixed.safetensors"
    try:
        remap(case.checkpoint, case.model, output)
        fresh = case.fresh_model()
        fresh.load_state_dict(load_file(str(output)), strict=True)
    except (CkptdiffError, RuntimeError) as exc:
        problems.append(f"remap: {str(exc).splitlines()[0][:160]}")
        return False
    state = fresh.state_dict()
    unequal = [k for k, v in case.loaded.items() if not bool((state[k] == v).all())]
    problems += [f"remap: {k} differs from from_pretrained's" for k in unequal]
    return not unequal


def _ratio(a: int, b: int) -> float:
    return a / b if b else 1.0


def totals(scores: list[Score]) -> dict[str, float]:
    """Precision and recall (over all true pairs) of renames and conversions, and the share
    fixed end to end: the figures the goals are set on."""
    rs, rr, rt = (sum(s.renames[i] for s in scores) for i in range(3))
    cs, cr, ct = (sum(s.conversions[i] for s in scores) for i in range(3))
    return {"rename_precision": _ratio(rr, rs), "rename_recall": _ratio(rr, rt),
            "conversion_precision": _ratio(cr, cs), "conversion_recall": _ratio(cr, ct),
            "fixed": _ratio(sum(s.fixed for s in scores), len(scores))}


def decidable_recall(scores: list[Score]) -> dict[str, float]:
    """Recall over the true pairs that names and shapes decide: those not declined as
    ambiguous (with the truth among the candidates) left out of the count."""
    rr, rt = (sum(s.renames[i] for s in scores) for i in (1, 2))
    cr, ct = (sum(s.conversions[i] for s in scores) for i in (1, 2))
    rd, cd = (sum(s.declined[i] for s in scores) for i in (0, 1))
    return {"rename_recall": _ratio(rr, rt - rd), "conversion_recall": _ratio(cr, ct - cd)}


def stated_fixed(scores: list[Score]) -> tuple[int, int]:
    """Of the cases not fixed whose every problem is declined as ambiguous, how many ``remap``
    fixes once the true readings are stated in a rules file: (fixed, such cases). Never part
    of the goal figure ``fixed``."""
    declined = [s for s in scores if s.stated is not None]
    return sum(bool(s.stated) for s in declined), len(declined)
