"""Rename suggestions: pair unexpected source keys with missing target keys, as reusable rules.

This module knows prefix rules: a prefix stripped (``module.``), added, or replaced
(``fc.`` → ``head.``) at a segment boundary, at any depth of stacking. Precision comes first: a
pair is only suggested when shapes agree and dtypes convert, each key is used once, and when two
rules explain the same keys equally well nothing is suggested.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator, Sequence

from ckptdiff.dtypes import can_convert
from ckptdiff.manifest import TensorInfo
from ckptdiff.report import Rule, Suggestion

# Prefixes that wrappers add (DataParallel, torch.compile, Lightning, PEFT, FSDP, checkpointing).
KNOWN_WRAPPERS = frozenset({
    "module.", "_orig_mod.", "model.", "base_model.model.", "_fsdp_wrapped_module.",
    "_checkpoint_wrapped_module.", "net.", "network.", "encoder.", "backbone.",
})
MAX_PREFIX_SEGMENTS = 4
# A suffix shared by more keys than this says nothing about which key is which.
MAX_CANDIDATES_PER_SUFFIX = 32

Pair = tuple[str, str]


def suggest_renames(
    unexpected: Sequence[TensorInfo], missing: Sequence[TensorInfo]
) -> tuple[list[Suggestion], list[Rule]]:
    """Suggestions (one per paired key) and the rules that produce them, best rule first."""
    if not unexpected or not missing:
        return [], []
    by_rule = _candidate_rules(unexpected, {m.key: m for m in missing})
    ranked = sorted(by_rule.items(), key=lambda item: (-len(item[1]), _rule_sort_key(item[0])))
    used_source: set[str] = set()
    used_target: set[str] = set()
    suggestions: list[Suggestion] = []
    rules: list[Rule] = []
    for index, (prefixes, pairs) in enumerate(ranked):
        live = [(s, t) for s, t in pairs if s not in used_source and t not in used_target]
        if not live or not _has_support(prefixes, live):
            continue
        if _tied_with_rival(live, ranked[index + 1:], used_source, used_target):
            # Two rules explain the same keys equally well: guessing would be a coin toss.
            used_source.update(s for s, _ in live)
            used_target.update(t for _, t in live)
            continue
        confidence = _confidence(prefixes, len(live))
        description = _describe(prefixes)
        for source_key, target_key in live:
            suggestions.append(Suggestion(source_key, target_key, confidence, description))
            used_source.add(source_key)
            used_target.add(target_key)
        rules.append(Rule("^" + re.escape(prefixes[0]), prefixes[1], len(live)))
    return suggestions, rules


def _splits(key: str) -> Iterator[tuple[str, str]]:
    """(prefix, rest) at each segment boundary, the empty prefix first."""
    yield "", key
    position = 0
    for _ in range(MAX_PREFIX_SEGMENTS):
        position = key.find(".", position) + 1
        if position == 0 or position >= len(key):
            return
        yield key[:position], key[position:]


def _candidate_rules(
    unexpected: Sequence[TensorInfo], missing: dict[str, TensorInfo]
) -> dict[Pair, list[Pair]]:
    prefixes_by_rest: dict[str, list[str]] = defaultdict(list)
    for key in missing:
        for prefix, rest in _splits(key):
            prefixes_by_rest[rest].append(prefix)
    by_rule: dict[Pair, list[Pair]] = defaultdict(list)
    for info in unexpected:
        for source_prefix, rest in _splits(info.key):
            target_prefixes = prefixes_by_rest.get(rest, ())
            if len(target_prefixes) > MAX_CANDIDATES_PER_SUFFIX:
                continue
            for target_prefix in target_prefixes:
                if target_prefix == source_prefix:
                    continue
                expected = missing[target_prefix + rest]
                if expected.shape == info.shape and can_convert(info.dtype, expected.dtype):
                    by_rule[(source_prefix, target_prefix)].append((info.key, expected.key))
    return by_rule


def _rule_sort_key(prefixes: Pair) -> tuple[int, int, str, str]:
    rank = 0 if _involves_wrapper(prefixes) else 1
    return (rank, len(prefixes[0]) + len(prefixes[1]), prefixes[0], prefixes[1])


def _has_support(prefixes: Pair, pairs: list[Pair]) -> bool:
    if _involves_wrapper(prefixes) or len(pairs) >= 2:
        return True
    # One pair from an unknown prefix: only when what stays the same is a real path.
    source_key, _ = pairs[0]
    return source_key[len(prefixes[0]):].count(".") >= 2


def _tied_with_rival(
    pairs: list[Pair], rivals: list[tuple[Pair, list[Pair]]], used_source: set[str],
    used_target: set[str],
) -> bool:
    ours = set(pairs)
    sources = {s for s, _ in pairs}
    targets = {t for _, t in pairs}
    for _, other in rivals:
        if len(other) < len(pairs):
            return False  # rivals are sorted by size: the rest are smaller still
        # The same pair reached through another prefix split is agreement, not rivalry.
        live = [(s, t) for s, t in other if s not in used_source and t not in used_target]
        clashes = [(s, t) for s, t in live if (s in sources or t in targets) and (s, t) not in ours]
        if len(live) >= len(pairs) and clashes:
            return True
    return False


def _confidence(prefixes: Pair, count: int) -> float:
    if _involves_wrapper(prefixes):
        return 0.99
    return min(0.95, 0.6 + 0.07 * count)


def _is_wrapper_stack(prefix: str) -> bool:
    """True for a non-empty prefix made only of known wrapper segments (``module._orig_mod.``)."""
    rest = prefix
    while rest:
        head = next((w for w in KNOWN_WRAPPERS if rest.startswith(w)), None)
        if head is None:
            return False
        rest = rest[len(head):]
    return bool(prefix)


def _involves_wrapper(prefixes: Pair) -> bool:
    """A strip or add of a wrapper stack (a replace between two non-wrappers does not count)."""
    source_prefix, target_prefix = prefixes
    if not target_prefix:
        return _is_wrapper_stack(source_prefix)
    if not source_prefix:
        return _is_wrapper_stack(target_prefix)
    return _is_wrapper_stack(source_prefix) and _is_wrapper_stack(target_prefix)


def _describe(prefixes: Pair) -> str:
    source_prefix, target_prefix = prefixes
    if not target_prefix:
        return f"strip prefix '{source_prefix}'"
    if not source_prefix:
        return f"add prefix '{target_prefix}'"
    return f"replace prefix '{source_prefix}' with '{target_prefix}'"
