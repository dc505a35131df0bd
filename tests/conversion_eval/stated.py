"""The promise behind a decline: once the user states the right reading, ``remap`` fixes the case.

For a case whose every remaining problem is a pair declined as ambiguous, this does what the
report tells a user to do: run ``remap --rules FILE`` once (the file is written with the rules
found), add to it, for each declined entry, the ``statements`` fragment of the reading that is
true (here: the one the truth by values confirms; its rules before the file's own, its
conversion among the file's), and run ``remap --rules FILE`` again. The case is fixed once
stated when that file loads with ``strict=True`` and every tensor equals ``from_pretrained``'s.
A reading with no statement (interleaved q/k/v) cannot be stated; a case that needs one is
reported so.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conversion_eval.models import Case
from tests.conversion_eval.oracle import perform
from tests.conversion_eval.truth import Truth

from ckptdiff.diffing.report import Report, Rule
from ckptdiff.fix.rules_file import RulesFile
from ckptdiff.rename.results import ConversionOp, Unpaired


def fragments(entry: Unpaired) -> list[dict[str, Any] | None]:
    """The entry's statements as a rules file writes them, aligned with its readings."""
    return [None if s is None else s.to_dict() for s in entry.statements]


def _true_conversion(conversion: dict[str, Any], case: Case) -> bool:
    ops = tuple(ConversionOp(str(o["op"]), o.get("dim"), o.get("parts"),
                             None if o.get("sizes") is None else tuple(o["sizes"]), o.get("per"),
                             None if o.get("dims") is None else (o["dims"][0], o["dims"][1]))
                for o in conversion["ops"])
    made = perform(ops, [case.saved[k] for k in conversion["sources"]])
    wanted = [case.loaded.get(k) for k in conversion["targets"]]
    return len(made) == len(wanted) and all(
        w is not None and tuple(m.shape) == tuple(w.shape) and bool((m == w).all())
        for m, w in zip(made, wanted, strict=True))


def _lands(entry: Unpaired, plan: RulesFile, truth: Truth) -> bool:
    """Whether the rules send the entry's key where the truth has it."""
    if entry.source_key is not None:
        return plan.rename(entry.source_key) == truth.renames.get(entry.source_key)
    sources = [k for k, v in truth.renames.items() if v == entry.target_key]
    return bool(sources) and all(plan.rename(k) == entry.target_key for k in sources)


def statement(report: Report, case: Case, truth: Truth, written: dict[str, Any]
              ) -> tuple[dict[str, Any] | None, str]:
    """The rules file ``written`` with the true reading of every declined entry added (from the
    entry's ``statements``), or ``None`` and why a reading cannot be stated."""
    base = [Rule(r["pattern"], r["replacement"], 0) for r in written.get("rules", [])]
    declined = [e for e in report.unpaired if len(e.readings) >= 2]
    conversions: list[dict[str, Any]] = []
    stated_rules: list[dict[str, str]] = []
    for entry in declined:
        key = entry.source_key or entry.target_key
        stated = [f for f in fragments(entry) if f is not None]
        if any("rules" in f for f in stated):
            if _lands(entry, _plan(stated_rules, base), truth):
                continue  # an earlier entry's reading (the same siblings) already states it
            for fragment in stated:
                rules = fragment.get("rules", [])
                if _lands(entry, _plan(stated_rules + rules, base), truth):
                    stated_rules += rules
                    break
            else:
                return None, f"{key}: no reading's rename rules send it where the truth has it"
            continue
        true = [c for f in stated for c in f.get("conversions", []) if _true_conversion(c, case)]
        if not true:
            return None, (f"{key}: none of its {len(stated)} reading(s) with ops is the truth"
                          " (a reading without ops cannot be stated)")
        conversions.append(true[0])
    document = dict(written)
    document["rules"] = stated_rules + list(written.get("rules", []))
    document["conversions"] = list(written.get("conversions", [])) + conversions
    return document, f"{len(stated_rules)} rename rule(s), {len(conversions)} conversion(s)"


def _plan(stated: list[dict[str, str]], base: list[Rule]) -> RulesFile:
    """The stated rules first: they name the keys' segments as stored."""
    return RulesFile(tuple(Rule(r["pattern"], r["replacement"], 0) for r in stated) + tuple(base),
                     {})


def declined_only(problems: list[str]) -> bool:
    """Whether every problem found before ``remap`` is a pair declined as ambiguous."""
    found = [p for p in problems if not p.startswith("remap:")]
    return bool(found) and all(p.startswith("declined (ambiguous)") for p in found)


def fixes_once_stated(case: Case, report: Report, truth: Truth, workdir: Path,
                      problems: list[str]) -> bool:
    """Write the rules file, state the true readings in it, remap by it, check it loads."""
    from safetensors.torch import load_file

    from ckptdiff import remap
    from ckptdiff.errors import CkptdiffError

    rules = workdir / f"{case.name}.rules.json"
    rules.unlink(missing_ok=True)
    output = workdir / f"{case.name}.stated.safetensors"
    try:
        remap(case.checkpoint, case.model, workdir / f"{case.name}.first.safetensors",
              rules=rules)
        document, why = statement(report, case, truth, json.loads(rules.read_text()))
        if document is None:
            problems.append(f"stated: cannot be stated: {why}")
            return False
        rules.write_text(json.dumps(document, indent=2), encoding="utf-8")
        applied = remap(case.checkpoint, case.model, output, rules=rules)
        assert applied.rules_action == "applied"
        fresh = case.fresh_model()
        fresh.load_state_dict(load_file(str(output)), strict=True)
    except (CkptdiffError, RuntimeError) as exc:
        problems.append(f"stated: remap --rules: {str(exc).splitlines()[0][:160]}")
        return False
    state = fresh.state_dict()
    unequal = [k for k, v in case.loaded.items() if not bool((state[k] == v).all())]
    problems += [f"stated: {k} differs from from_pretrained's" for k in unequal]
    if not unequal:
        problems.append(f"stated: fixed by remap --rules with {why}")
    return not unequal
