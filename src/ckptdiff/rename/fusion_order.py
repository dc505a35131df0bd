"""Which order the parts of a fused tensor go in, from their names only.

Shapes say *that* ``w1`` and ``w3`` (both ``[I, H]``) fill ``gate_up_proj`` (``[2I, H]``), never
in which order: a wrong order loads without an error and computes garbage. So an order is only
claimed on evidence from the names:

- *spelled*: the fused name lists the parts' distinguishing words in order (``gate_up_proj`` ←
  ``gate_proj``, ``up_proj``; ``w13`` ← ``w1``, ``w3``; ``Wqkv`` ← ``q``, ``k``, ``v``);
- *numbered*: the parts are one stem with ascending numbers (``w1``, ``w3``; ``fc1``, ``fc2``).

Attention projections (``q``/``k``/``v``, ``query``/``key``/``value``) are never ordered: fused
layouts interleave them per head as often as they block them, and shapes cannot tell which. That
holds as well where other projections share the fused tensor with all three (a per-head output
gate: ``gqkv_proj`` ← ``gate_proj``, ``q_proj``, ``k_proj``, ``v_proj``).

Where no order is claimed, the note names the orders the sizes allow (:func:`order_readings`),
so that the user can state the right one in a rules file.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import permutations
from math import factorial
from typing import NamedTuple

SPELLED = 0.98
NUMBERED = 0.95
ATTENTION_WORDS = frozenset({"q", "k", "v", "query", "key", "value"})
_NUMBERED = re.compile(r"^([A-Za-z_]*?)_?(\d+)$")
_INITIALS = {"query": "q", "key": "k", "value": "v"}
_ROLE = {"q": 0, "query": 0, "k": 1, "key": 1, "v": 2, "value": 2}
# Parts up to which every order is a reading (3! = 6); beyond, the parts' own and "any other".
MAX_ORDERS_LISTED = 3


class Readings(NamedTuple):
    """Why parts are not ordered, each reading, and (aligned) the parts' order each states:
    indices into the tokens, ``None`` where no order of whole parts performs it."""

    reason: str
    readings: tuple[str, ...]
    orders: tuple[tuple[int, ...] | None, ...]


def distinguishing(names: Sequence[tuple[str, ...]]) -> list[str] | None:
    """The one segment where the parts' names differ, per part (``None``: not exactly one)."""
    if len({len(n) for n in names}) != 1:
        return None
    differing = [i for i in range(len(names[0])) if len({n[i] for n in names}) > 1]
    if len(differing) != 1:
        return None
    return [n[differing[0]] for n in names]


def _words(token: str) -> list[str]:
    return [w for w in re.split(r"[_.]", token.lower()) if w]


def is_attention(tokens: Sequence[str]) -> bool:
    """Whether the distinguishing tokens read as attention query/key/value projections."""
    found = set()
    for token in tokens:
        words = set(_words(token)) & ATTENTION_WORDS
        if len(words) != 1:
            return False
        found |= words
    return len(found) == len(tokens)


def with_attention(tokens: Sequence[str]) -> bool:
    """Whether the tokens hold query, key and value projections (one each) beside others: a
    fused tensor that holds all three may interleave them per head like a plain ``qkv``."""
    roles: list[int] = []
    for token in tokens:
        words = set(_words(token)) & ATTENTION_WORDS
        if len(words) > 1:
            return False
        roles += [_ROLE[w] for w in words]
    return sorted(roles) == [0, 1, 2] and len(tokens) > 3


def attention_readings(tokens: Sequence[str], sizes: Sequence[int], dim: int,
                       fused_size: int, positions: Sequence[int] | None = None) -> Readings:
    """Why fused q/k/v parts are not ordered, and the two layouts their sizes allow.

    Any head count that divides the parts' sizes lets either layout fill the fused tensor:
    *blocked* puts each projection whole, one after another (transformers' ``Chunk(dim=0)`` in
    q, k, v order); *interleaved* repeats q, k, v rows per head (GPT-NeoX ``query_key_value``),
    or per key/value group when the parts' sizes differ (grouped-query attention).
    ``positions``: where the fused name spells the parts' order, their places in it; parts beside
    q/k/v (a gate) that no name places leave the blocked order unsaid.
    The orders: the blocked reading's parts in order where it is said; interleaved has none. The
    readings are prose only: the caller, which knows the ops a statement performs, names them.
    """
    if positions is not None:
        by_role = sorted(range(len(tokens)), key=lambda i: positions[i])
    else:
        by_role = sorted(range(len(tokens)), key=lambda i: min(
            (_ROLE[w] for w in _words(tokens[i]) if w in _ROLE), default=len(_ROLE)))
    names = ",".join(tokens[i] for i in by_role)
    spans = " + ".join(f"{tokens[i]} {sizes[i]}" for i in by_role)
    unit = "head" if len(set(sizes)) == 1 else "key/value group"
    stated: tuple[int, ...] | None = tuple(by_role)
    if positions is None and not is_attention(tokens):
        stated = None
        blocked = (f"blocked: {names} each whole, one after another along dim {dim}, in an "
                   "order the names do not say")
    else:
        blocked = (f"blocked: {names} one after another along dim {dim} (transformers' "
                   f"Chunk(dim={dim}))")
    readings = (blocked,
                f"interleaved per {unit}: each {unit}'s {names} rows in turn (GPT-NeoX "
                "query_key_value)")
    reason = (f"{spans} = {fused_size} along dim {dim} fits both q/k/v layouts, blocked and "
              f"interleaved per {unit} (any head count dividing the sizes): shapes cannot tell "
              "which; not guessing")
    return Readings(reason, readings, (stated, None))


def order_readings(tokens: Sequence[str], sizes: Sequence[int], dim: int) -> Readings:
    """Why parts that fill a fused tensor by size are not ordered, and the orders that fit.

    Every order fills it (the sizes add up whichever comes first) and a wrong one loads without
    an error. The readings list each order, the parts' own order (the model's, for a split)
    first (the caller names the ops that perform it); beyond :data:`MAX_ORDERS_LISTED` parts,
    that one and "any other" (24 orders of four parts help nobody).
    """
    count = len(tokens)
    orders = (list(permutations(range(count))) if count <= MAX_ORDERS_LISTED
              else [tuple(range(count))])
    readings = [f"{', '.join(tokens[i] for i in o)} in this order along dim {dim}"
                for o in orders]
    if count > MAX_ORDERS_LISTED:
        readings.append(f"any other of the {factorial(count) - 1} orders of "
                        f"{', '.join(tokens)}")
    stated: list[tuple[int, ...] | None] = [*orders, None][:len(readings)]
    spans = " + ".join(f"{t} {n}" for t, n in zip(tokens, sizes, strict=True))
    reason = (f"{', '.join(tokens)} fill it by size ({spans} = {sum(sizes)} along dim {dim}), "
              "but nothing in the names says in which order: not guessing")
    return Readings(reason, tuple(readings), tuple(stated))


def order(fused: tuple[str, ...], tokens: Sequence[str]) -> tuple[list[int], float] | None:
    """Positions of the parts in the fused tensor and the confidence, or ``None``: unknown.

    ``fused`` is the fused tensor's relative name, ``tokens`` each part's distinguishing segment.
    """
    if len(set(tokens)) != len(tokens):
        return None
    spelled = _spelled(fused, tokens)
    if spelled is not None:
        return spelled, SPELLED
    numbers = []
    stems = set()
    for token in tokens:
        match = _NUMBERED.match(token)
        if match is None:
            return None
        stems.add(match.group(1))
        numbers.append(int(match.group(2)))
    if len(stems) != 1:
        return None
    ranked = sorted(range(len(tokens)), key=lambda i: numbers[i])
    return [ranked.index(i) for i in range(len(tokens))], NUMBERED


def spells(fused: tuple[str, ...], tokens: Sequence[str]) -> bool:
    """Whether the fused name spells the parts' distinguishing words (``up_gate_proj`` spells
    ``up_proj`` and ``gate_proj``; ``qkv_proj`` does not)."""
    return len(set(tokens)) == len(tokens) and _spelled(fused, tokens) is not None


def _spelled(fused: tuple[str, ...], tokens: Sequence[str]) -> list[int] | None:
    words = [w for segment in fused for w in _words(segment)]
    per_part = [_words(t) for t in tokens]
    common = set.intersection(*(set(p) for p in per_part))
    keys = []
    for part in per_part:
        own = [w for w in part if w not in common]
        if len(own) != 1:
            return None
        keys.append(own[0])
    if all(k in words for k in keys):
        found = [words.index(k) for k in keys]
        if len(set(found)) == len(found):
            return [sorted(found).index(f) for f in found]
    # ``qkv`` and ``Wqkv`` spell ``q``, ``k``, ``v``: one-letter words written as one word;
    # ``query_key_value`` spells them in full. Three or more parts may be spelled by their
    # initials too (``gqkv`` ← ``gate``, ``q``, ``k``, ``v``): a two-letter word (``up``,
    # ``in``) spells two initials by chance too often to count.
    firsts = [k[0] for k in keys]
    if len(set(firsts)) == len(keys) and (all(len(k) == 1 for k in keys) or len(keys) >= 3):
        initials = "".join(_INITIALS[w] for w in words if w in _INITIALS)
        for word in [*words, initials]:
            letters = word[1:] if word.startswith("w") and len(word) == len(keys) + 1 else word
            if len(letters) == len(keys) and set(letters) == set(firsts):
                found = [letters.index(k) for k in firsts]
                return [sorted(found).index(f) for f in found]
    # ``w13`` spells ``w1`` and ``w3``: one stem, the digits written one after another.
    numbered = [_NUMBERED.match(k) for k in keys]
    if all(m is not None for m in numbered):
        stems = {m.group(1) for m in numbered if m is not None}
        digits = [m.group(2) for m in numbered if m is not None]
        if len(stems) == 1:
            stem = stems.pop()
            for word in words:
                if word.startswith(stem) and word[len(stem):].isdigit():
                    written = word[len(stem):]
                    if all(d in written for d in digits):
                        found = [written.find(d) for d in digits]
                        if len(set(found)) == len(found):
                            return [sorted(found).index(f) for f in found]
    return None
