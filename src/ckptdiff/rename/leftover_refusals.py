"""A leftover key that had an open partner of its shape, and why it was not paired.

Kept apart from :mod:`leftovers` (which finds the pairs) so that the record and its wording
stay in one place: a key refused between several look-alikes carries one reading and one
rename rule (``remap --rules``) per pairing it was refused between.
"""

from __future__ import annotations

from typing import NamedTuple

from ckptdiff.rename.results import Statement
from ckptdiff.rename.statements import key_renames


class Refusal(NamedTuple):
    """A key that had an open partner of its shape, and why it was not paired."""

    is_source: bool
    key: str
    reason: str
    candidates: tuple[str, ...]
    readings: tuple[str, ...] = ()
    # False when a weak rename hint about the key says as much (it is then left to say it).
    says_more: bool = True
    statements: tuple[Statement | None, ...] = ()  # aligned with readings


def refused_between(is_source: bool, key: str, keys: tuple[str, ...],
                    pairs: list[tuple[str, str]]) -> Refusal:
    """``key`` refused between ``keys``: one reading (and rename rule) per source → target."""
    return Refusal(is_source, key, several_reason(keys), keys,
                   tuple(f"{a} → {b}" for a, b in pairs), True,
                   tuple(key_renames([pair]) for pair in pairs))


def several_reason(keys: tuple[str, ...]) -> str:
    """Why a key with several open look-alikes that share a word with it is not paired."""
    shown = ", ".join(f"'{k}'" for k in keys[:6])
    return f"open keys {shown} beside it fit its shape and share a word with it: not guessing"
