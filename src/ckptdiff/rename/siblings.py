"""Numbered siblings that tie over as many same-shaped targets, and why they stay unpaired.

``mlp.c_fc_0``/``mlp.c_fc_1`` against ``mlp.gate_proj``/``mlp.up_proj`` (all ``[I, H]``): shapes
fit either way, the numbers say which came first in the source, and nothing in the targets'
words places ``gate`` before ``up`` (the live module order does not help: EXAONE's ``c_fc_0`` is
``gate_proj`` while Nomic BERT's ``fc11`` is ``up_proj``, and both models register ``gate_proj``
first). A wrong guess loads without an error and computes garbage, so the engine declines and
names every pairing the names and shapes allow, for the user to state the right one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import permutations
from typing import NamedTuple

from ckptdiff.rename.keys import KeyView, fit
from ckptdiff.rename.results import Statement
from ckptdiff.rename.statements import segment_renames
from ckptdiff.rename.vocabulary import ordinal

MAX_SIBLINGS = 3  # beyond this many, the pairings (n!) are too many to list usefully
# Words that do order a block's tensors (``layernorm_before``/``layernorm_after``): where the
# targets have them, the engine may not know the order, but the names are not silent on it.
_ORDER_WORDS = frozenset({"before", "after", "pre", "post", "input", "output", "first",
                          "second", "last"})


class Doubt(NamedTuple):
    """Keys declined together: the reason and each whole pairing they were declined between."""

    sources: tuple[KeyView, ...]
    targets: tuple[KeyView, ...]
    reason: str
    readings: tuple[str, ...]
    statements: tuple[Statement | None, ...]  # aligned with readings (rules-file fragments)


def differing(views: Sequence[KeyView]) -> int | None:
    """The one position where the keys' segments differ (``None``: not exactly one)."""
    if len({len(v.tokens) for v in views}) != 1:
        return None
    at = [i for i in range(len(views[0].tokens)) if len({v.tokens[i] for v in views}) > 1]
    return at[0] if len(at) == 1 else None


def undecided(sources: Sequence[KeyView], targets: Sequence[KeyView]) -> Doubt | None:
    """Why ``sources`` (numbered siblings) cannot be paired with as many ``targets``, or ``None``
    when they are not such a tie (sizes differ, not one stem, a pair that does not fit)."""
    count = len(sources)
    if not 2 <= count <= MAX_SIBLINGS or len(targets) != count:
        return None
    source_at, target_at = differing(sources), differing(targets)
    if source_at is None or target_at is None:
        return None
    words = [t.tokens[target_at] for t in targets]
    if any(_ORDER_WORDS & set(re.split(r"[_\-]", w.lower())) for w in words):
        return None
    numbered = [ordinal(s.tokens[source_at]) for s in sources]
    if any(n is None for n in numbered) or len({n[0] for n in numbered if n}) != 1:
        return None
    if not all(fit(s, t)[0] for s in sources for t in targets):
        return None
    sources = sorted(sources, key=lambda s: ordinal(s.tokens[source_at]) or ("", 0))
    names = [s.tokens[source_at] for s in sources]
    orders = list(permutations(words))
    readings = tuple(", ".join(f"{a} → {b}" for a, b in zip(names, order, strict=True))
                     for order in orders)
    statements = tuple(segment_renames(list(zip(names, order, strict=True))) for order in orders)
    shape = list(sources[0].info.shape)
    reason = (f"same shapes (all {shape}); names don't decide {' vs '.join(words)}: "
              f"{' or '.join(repr(r) for r in readings)} both load; not guessing")
    return Doubt(tuple(sources), tuple(targets), reason, readings, statements)
