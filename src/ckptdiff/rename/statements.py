"""Rules-file fragments that state a reading the engine declined between (``remap --rules``).

A declined entry's ``readings`` say in words what each explanation is; its ``statements`` say it
in the rules file's own shapes, so that a user who knows which holds pastes one: rename rules
for pairings (a whole key, or a sibling's segment in every block at once), a conversion for a
fused tensor's parts in one order. Built from the same names and shapes as the readings, never
parsed back out of their text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence

from ckptdiff.rename.results import Conversion, ConversionOp, Rule, Statement, Unpaired

STATED_RULE = "stated in the rules file"
# Ends the prose of a paste-ready line; the fragment (JSON) follows it (markdown codes it).
FRAGMENT_MARK = " in a `remap --rules` file (rules first): "


def key_renames(pairs: Iterable[tuple[str, str]]) -> Statement:
    """Rename rules sending each whole stored key ``source`` to ``target``."""
    return Statement(tuple(Rule("^" + re.escape(source) + "$", target, 0)
                           for source, target in pairs))


def segment_renames(pairs: Sequence[tuple[str, str]]) -> Statement | None:
    """Rename rules sending one key segment to another wherever it stands (every block at once:
    ``mlp.c_fc_0.weight`` and ``mlp.c_fc_0.bias`` of every layer).

    ``None`` when a replacement is another pair's segment (``w1 → w2, w2 → w1``): rules apply
    one after another, so the second would rename what the first made.
    """
    if {target for _, target in pairs} & {source for source, _ in pairs}:
        return None
    return Statement(tuple(Rule(r"(^|\.)" + re.escape(source) + r"(?=\.|$)", r"\g<1>" + target,
                                0) for source, target in pairs))


def conversion(sources: Sequence[str], targets: Sequence[str],
               ops: Sequence[ConversionOp]) -> Statement:
    """One stated conversion of ``sources`` (in this order) into ``targets``."""
    return Statement(conversions=(Conversion(tuple(sources), tuple(targets), tuple(ops), 1.0,
                                             STATED_RULE),))


def merged(statements: Iterable[Statement]) -> Statement:
    """One fragment stating several entries' reading at once (each layer's conversion, the
    siblings' rules once though every block's keys repeat them)."""
    rules: dict[tuple[str, str], Rule] = {}
    conversions: dict[tuple[tuple[str, ...], tuple[str, ...]], Conversion] = {}
    for statement in statements:
        for rule in statement.rules:
            rules.setdefault((rule.pattern, rule.replacement), rule)
        for made in statement.conversions:
            conversions.setdefault((made.sources, made.targets), made)
    return Statement(tuple(rules.values()), tuple(conversions.values()))


def stated_lines(entries: Sequence[Unpaired]) -> list[str]:
    """One paste-ready line per reading that every one of ``entries`` (declined alike: each
    layer's copy of one doubt) can state: the fragment stating it for all of them at once."""
    lines = []
    for n in range(len(entries[0].readings)):
        found = [e.statements[n] if n < len(e.statements) else None for e in entries]
        if any(s is None for s in found):
            continue
        fragment = merged(s for s in found if s is not None).to_dict()
        lines.append(f"reading {n + 1}{FRAGMENT_MARK}{json.dumps(fragment, ensure_ascii=False)}")
    return lines


def ambiguous_lines(unpaired: tuple[Unpaired, ...], limit: int = 6) -> list[str]:
    """The keys declined as ambiguous, grouped by reason: each reading, and how to state one.

    Every block repeats the same doubt; one group per (reason, readings) keeps it readable.
    The first line of a group is flush, its readings and hint are indented by two spaces.
    """
    groups: dict[tuple[str, tuple[str, ...]], list[Unpaired]] = {}
    for entry in unpaired:
        if len(entry.readings) >= 2:
            groups.setdefault((entry.reason, entry.readings), []).append(entry)
    lines: list[str] = []
    for (reason, readings), entries in list(groups.items())[:limit]:
        keys = [e.source_key or e.target_key or "" for e in entries]
        shown = ", ".join(keys[:2]) + (f" and {len(keys) - 2} more keys" if len(keys) > 2 else "")
        lines.append(f"{shown}: {reason}")
        lines += [f"  reading {n}: {text}" for n, text in enumerate(readings, 1)]
        stated = stated_lines(entries)
        if len(stated) < len(readings):  # the hint says why a reading has no fragment
            lines.append("  " + _how_to_state(readings))
        lines += ["  " + line for line in stated]
    if len(groups) > limit:
        lines.append(f"… and {len(groups) - limit} more (see --format json: unpaired, readings)")
    return lines


def _how_to_state(readings: tuple[str, ...]) -> str:
    if all(" → " in text and ":" not in text for text in readings):
        source, target = readings[0].split(", ")[0].split(" → ")
        if "." in source:  # whole keys (a tie between keys)
            rule = {"pattern": "^" + re.escape(source) + "$", "replacement": target}
        else:  # one segment (numbered siblings)
            rule = {"pattern": r"\." + re.escape(source) + r"\.",
                    "replacement": f".{target}."}
        return ("to state which holds: a rename rule per key in a `remap --rules` file, e.g. "
                f"{json.dumps(rule)} (reading 1)")
    if any("conversion ops" in text for text in readings):
        interleaved = any(t.startswith("interleaved") for t in readings)  # q/k/v: no op
        return ("to state which holds: add the conversion to a `remap --rules` file's "
                '"conversions" (sources, targets in the reading\'s order, its ops)' + (
                    "; an interleaved layout has no op yet: convert such a tensor before "
                    "loading" if interleaved else ""))
    return "to state which holds: convert the tensors before loading (the readings say how)"
