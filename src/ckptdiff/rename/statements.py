"""Rules-file fragments that state a reading the engine declined between (``remap --rules``).

A declined entry's ``readings`` say in words what each explanation is; its ``statements`` say it
in the rules file's own shapes, so that a user who knows which holds pastes one: rename rules
for pairings (a whole key, or a sibling's segment in every block at once), a conversion for a
fused tensor's parts in one order. Built from the same names and shapes as the readings, never
parsed back out of their text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from ckptdiff.rename.results import Conversion, ConversionOp, Rule, Statement

STATED_RULE = "stated in the rules file"


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
