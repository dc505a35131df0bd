"""Regex rules (``re.sub(pattern, replacement, key)``, applied in order) that perform the pairs.

Rules are built greedily, each one verified against every source key before it is kept: applied
after the rules before it, a rule must move each pair it touches one edit closer to its target,
never change a key that already loads, never turn an unpaired key into a target key, and never
make two keys collide. The most general form of an edit is tried first (``^module\\.`` → ``''``),
then templates anchored on the whole key (``^(layer\\.\\d+\\.)gamma$``), then one literal rule per
key. Suggestions the rules cannot reach (a cycle of swaps) stay suggestions only.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Collection, Sequence

from ckptdiff.rename.ops import Edit, Signature, apply, edits, generic_regex, layout, template_regex
from ckptdiff.rename.results import Rule

MAX_RULES = 200
MAX_INDEX_RULES = 24
_WHERE_ORDER = {"whole": 0, "start": 1, "middle": 2, "end": 3}


class _State:
    """Every source key's current name as the rules so far rewrite it."""

    def __init__(self, pairs: Sequence[tuple[str, str]], universe: Sequence[str],
                 target_keys: Collection[str], loud: Callable[[str, str], bool]) -> None:
        self.loud = loud
        self.goal = dict(pairs)
        self.open = list(self.goal)
        self.current = dict(zip(universe, universe, strict=True))
        self.current.update(zip(self.goal, self.goal, strict=True))
        self.targets = target_keys
        self.fixed = (self.current.keys() & target_keys) - self.goal.keys()
        # Names stay unique: keys start distinct and a kept rule never makes two collide.
        self.occupied = set(self.current)
        self.rules: list[Rule] = []
        self.edits: dict[str, tuple[str, list[Edit]]] = {}

    def pending(self) -> list[str]:
        """Sources not yet at their target key (only those pending before are looked at)."""
        current, goal = self.current, self.goal
        self.open = [s for s in self.open if current[s] != goal[s]]
        return self.open

    def try_rule(self, pattern: str, replacement: str, signature: Signature,
                 expected: dict[str, str]) -> bool:
        """Keep the rule when it passes every check; returns whether it was kept."""
        changes: dict[str, str] = {}
        head = plain_prefix(pattern, replacement)
        if head is not None:  # ``^literal`` → literal: str methods beat the regex engine
            old, new_head = head
            cut = len(old)
            for key, now in self.current.items():
                if now.startswith(old):
                    changes[key] = new_head + now[cut:]
        else:
            compiled = re.compile(pattern)
            literal = signature.removed or signature.before
            for key, now in self.current.items():
                if literal and literal not in now:
                    continue
                new = compiled.sub(replacement, now)
                if new != now:
                    changes[key] = new
        if not expected.items() <= changes.items():
            return False  # a pair the rule is for does not come out as planned
        for key in changes.keys() - expected.keys():
            new = changes[key]
            if key in self.goal:
                if new != _progress(self.current[key], self.goal[key], signature):
                    return False
            elif key in self.fixed or (new in self.targets and not self.loud(key, new)):
                return False  # (a shape error when loading is loud: a rename is no worse)
        arriving = set(changes.values())
        if len(arriving) < len(changes):
            return False  # two keys would collide
        leaving = set(map(self.current.__getitem__, changes))
        if not arriving & self.occupied <= leaving:
            return False  # a name taken by a key that stays
        self.occupied -= leaving
        self.occupied |= arriving
        self.current.update(changes)
        matches = len(changes.keys() & self.goal.keys())
        self.rules.append(Rule(pattern, replacement, matches))
        return True


def synthesize(pairs: Sequence[tuple[str, str]], universe: Sequence[str],
               target_keys: Collection[str],
               loud: Callable[[str, str], bool] = lambda source, target: False) -> list[Rule]:
    """Ordered, verified rules that turn each pair's source key into its target key.

    ``loud(source, target)`` says whether loading an unpaired source tensor under a target key
    would fail loudly (a shape error): such a rename is allowed, keeping rules general.
    """
    if not pairs:
        return []
    known = {source: (source, edits(source, target)) for source, target in pairs}
    pairs = _without_long_shifts(pairs, known)
    state = _State(pairs, universe, target_keys, loud)
    state.edits = known  # the first grouping reuses them
    _separators(state)
    while len(state.rules) < MAX_RULES:
        groups = _groups(state)
        if not groups or not any(_place(state, sig, members) for sig, members in groups):
            break
    return state.rules


def _without_long_shifts(pairs: Sequence[tuple[str, str]],
                         known: dict[str, tuple[str, list[Edit]]]
                         ) -> Sequence[tuple[str, str]]:
    """The pairs, less index moves when they would need more than ``MAX_INDEX_RULES`` rules.

    A regex cannot add one to an index: each moved index is a rule of its own. Past a couple of
    dozen the rules stop being something to paste; those pairs stay suggestions (``remap``
    applies them).
    """
    moved: dict[str, set[tuple[str, str]]] = {}
    # Keys that differ alike share one list of edits (``ops.edits`` caches them): looked at once.
    seen: dict[int, set[tuple[str, str]]] = {}
    for source, _ in pairs:
        found = known[source][1]
        shifts = seen.get(id(found))
        if shifts is None:
            shifts = seen[id(found)] = {
                (edit.signature.removed, edit.signature.inserted) for edit in found
                if edit.signature.kind == "sub" and edit.signature.removed.isdigit()
                and edit.signature.inserted.isdigit()}
        if shifts:
            moved.setdefault(source, set()).update(shifts)
    if len({m for found in moved.values() for m in found}) <= MAX_INDEX_RULES:
        return pairs
    return [(s, t) for s, t in pairs if s not in moved]


def _separators(state: _State) -> None:
    """TF/Keras ``/`` paths against torch ``.`` keys (or back) differ in every separator first."""
    # (Each separator is looked for in all keys at once first: at C speed, nearly always absent.)
    sources, targets = "\n".join(state.goal), "\n".join(state.goal.values())
    for old, new in (("/", "."), (".", "/")):
        if old not in sources or new not in targets:
            continue
        changing = {s: s.replace(old, new) for s, t in state.goal.items()
                    if old in s and old not in t and new in t}
        if changing:
            sig = Signature("sub", "middle", old, new, "", "")
            state.try_rule(re.escape(old), new, sig, changing)
            return


def _groups(state: _State) -> list[tuple[Signature, list[tuple[str, list[Edit]]]]]:
    grouped: dict[Signature, list[tuple[str, list[Edit]]]] = defaultdict(list)
    current, goal, cache = state.current, state.goal, state.edits
    # Keys that differ alike share one edit list (``ops.edits`` caches it): its group is kept.
    last: list[Edit] | None = None
    group: list[tuple[str, list[Edit]]] = []
    for source in state.pending():
        now = current[source]
        known = cache.get(source)
        if known is None or known[0] != now:  # recompute only for keys the last rule changed
            known = cache[source] = (now, edits(now, goal[source]))
        found = known[1]
        if not found:  # the keys differ only in separators: one literal rule does it
            found = [Edit(0, len(now), Signature("sub", "whole", now, goal[source], "", ""))]
            cache[source] = (now, found)
        if len(found) == 1:
            if found is not last:
                last, group = found, grouped[found[0].signature]
            group.append((source, found))
            continue
        by_sig: dict[Signature, list[Edit]] = {}
        for edit in found:
            by_sig.setdefault(edit.signature, []).append(edit)
        for sig, mine in by_sig.items():
            grouped[sig].append((source, mine))
    return sorted(grouped.items(), key=lambda item: (
        _WHERE_ORDER[item[0].where], _chain_order(item[0]), -len(item[1]), item[0].removed,
        item[0].inserted))


def _chain_order(sig: Signature) -> int:
    """Index moves in the order that never renames a key twice (last layer first when the
    indices grow, first layer first when they shrink); 0 for every other edit."""
    if sig.kind != "sub" or not (sig.removed.isdigit() and sig.inserted.isdigit()):
        return 0
    old, new = int(sig.removed), int(sig.inserted)
    return -old if new > old else old


def _place(state: _State, sig: Signature, members: list[tuple[str, list[Edit]]]) -> bool:
    """Add the most general verified rule for ``sig``; False when none passes."""
    current = state.current
    expected: dict[str, str] = {}
    for s, mine in members:  # (one edit, nearly always: performed here, without a call)
        if len(mine) == 1:
            start, end, signature = mine[0]
            now = current[s]
            expected[s] = now[:start] + signature.inserted + now[end:]
        else:
            expected[s] = apply(current[s], mine)
    generic = generic_regex(sig)
    index_change = sig.removed.isdigit() and sig.inserted.isdigit()
    if generic is not None and not index_change and state.try_rule(*generic, sig, expected):
        return True
    single = [(s, mine[0]) for s, mine in members if len(mine) == 1]
    by_layout: dict[tuple[tuple[str, ...], tuple[str, ...]], list[tuple[str, Edit]]] = (
        defaultdict(list))
    for source, edit in single:
        text = state.current[source]
        by_layout[(layout(text[:edit.start]), layout(text[edit.end:]))].append((source, edit))
    for group in sorted(by_layout.values(), key=len, reverse=True):
        keys = [(state.current[s], e) for s, e in group]
        wanted = {s: expected[s] for s, _ in group}
        for anchored, exact in ((False, False), (False, True), (True, False), (True, True)):
            rule = template_regex(sig, keys, exact, anchored)
            if rule is not None and state.try_rule(*rule, sig, wanted):
                return True
    for source, _ in members:
        whole = Signature("sub", "whole", state.current[source], state.goal[source], "", "")
        pattern = "^" + re.escape(state.current[source]) + "$"
        replacement = state.goal[source].replace("\\", "\\\\")
        if state.try_rule(pattern, replacement, whole, {source: state.goal[source]}):
            return True
    return False


def plain_prefix(pattern: str, replacement: str) -> tuple[str, str] | None:
    """(old, new) when the rule only swaps one literal prefix for another: then
    ``re.sub(pattern, replacement, key)`` is ``new + key[len(old):]`` for a key that starts
    with ``old``, and ``key`` for any other."""
    if not pattern.startswith("^") or "\\" in replacement:
        return None
    body = pattern[1:]
    literal = re.sub(r"\\(.)", r"\1", body)
    if re.escape(literal) != body or not literal:
        return None
    return literal, replacement


def _progress(current: str, goal: str, signature: Signature) -> str | None:
    """``current`` after its edits of ``signature``, or ``None`` when it has none."""
    mine = [e for e in edits(current, goal) if e.signature == signature]
    return apply(current, mine) if mine else None
