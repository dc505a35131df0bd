"""How related two name segments are, judged from their spelling alone.

``attn``/``attention`` and ``dense_1``/``dense_layer_1`` are abbreviations; ``LayerNorm`` and
``layer_norm`` are one name; ``gamma``/``weight`` are known synonyms. ``dense_2``/``dense_3`` and
``3``/``4`` are indices of one family: their renames are the alignment's business, never a learned
substitution. Everything else is unrelated: a rename between unrelated names needs much more
evidence.
"""

from __future__ import annotations

import re

UNRELATED = 0
ABBREVIATION = 1
SAME = 2
INDEX = -1  # same family, another index

# Names that mean the same thing across libraries and versions.
SYNONYMS = frozenset(frozenset(pair) for pair in (
    ("gamma", "weight"), ("beta", "bias"), ("kernel", "weight"), ("embeddings", "weight"),
    ("moving_mean", "running_mean"), ("moving_variance", "running_var"), ("scale", "weight"),
    ("attn", "attention"), ("ln", "norm"), ("ln", "layernorm"), ("ln", "layer_norm"),
    ("mlp", "ffn"), ("fc", "dense"), ("fc", "linear"), ("dense", "linear"),
))
# Leaf names shared by almost every module: a shared one says nothing about which key is which.
GENERIC_LEAVES = frozenset({
    "weight", "bias", "running_mean", "running_var", "num_batches_tracked", "kernel", "gamma",
    "beta", "moving_mean", "moving_variance", "embeddings", "scale", "weight_g", "weight_v",
})

_INDEXED = re.compile(r"^(?P<family>.*?)[_-]?(?P<index>\d+)$")
_RUNS = re.compile(r"\d+|[^\d]+")


def relation(a: str, b: str) -> int:
    """``SAME``, ``ABBREVIATION``, ``INDEX`` or ``UNRELATED`` for two different segments."""
    if a.isdigit() or b.isdigit():
        return INDEX if a.isdigit() and b.isdigit() else UNRELATED
    if frozenset((a, b)) in SYNONYMS:
        return SAME
    na, nb = _normal(a), _normal(b)
    if na == nb:
        return SAME
    if family(a) == family(b):
        return INDEX
    digits_a = [r for r in _RUNS.findall(na) if r.isdigit()]
    digits_b = [r for r in _RUNS.findall(nb) if r.isdigit()]
    if digits_a != digits_b:
        return UNRELATED
    letters_a = "".join(c for c in na if not c.isdigit())
    letters_b = "".join(c for c in nb if not c.isdigit())
    if frozenset((letters_a, letters_b)) in SYNONYMS:
        return SAME
    short, long = sorted((letters_a, letters_b), key=len)
    if short and short[0] == long[0] and _is_subsequence(short, long):
        return ABBREVIATION
    return UNRELATED


def family(token: str) -> str:
    """The name without its index suffix: ``dense_3`` → ``dense``, ``3`` → ``''``."""
    match = _INDEXED.match(token)
    return token if match is None else match.group("family")


def is_anchor(token: str) -> bool:
    """True for a segment that identifies a place in a model (not an index, not a generic leaf)."""
    return not token.isdigit() and token not in GENERIC_LEAVES


def _normal(token: str) -> str:
    return token.lower().replace("_", "").replace("-", "")


def _is_subsequence(short: str, long: str) -> bool:
    letters = iter(long)
    return all(c in letters for c in short)
