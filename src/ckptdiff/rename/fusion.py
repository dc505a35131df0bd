"""Conversions: open keys that no rename pairs, explained as stacked, fused or split tensors.

Runs after the rename stages, on the keys they left open. Keys are grouped by *scope*: their
segments up to the last index (``model.layers.3``), so that a checkpoint's
``model.layers.3.block_sparse_moe.experts.{i}.w1.weight`` meets the model's
``model.layers.3.mlp.experts.gate_up_proj``. Inside a scope, source keys that differ only in
their innermost index, numbered ``0..E-1`` with one shape, form a stacked group (``[E, …]``);
:mod:`fusion_solve` then does the shape arithmetic (many sources → one target: concat and stack;
one source → many targets: chunk).

Linear in the keys: one pass builds the scopes, and each distinct scope pattern (relative names,
shapes, dtypes) is solved once and reused for every layer that repeats it. Nothing is solved
where no target shares a scope with a source.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import NamedTuple

from ckptdiff.rename.fusion_solve import Desc, Found, Note, solve
from ckptdiff.rename.keys import KeyView
from ckptdiff.rename.results import Conversion, ConversionOp, Statement, Unpaired
from ckptdiff.rename.statements import conversion

MAX_PAIRS_PER_SCOPE = 200_000  # fused × parts beyond which a scope is skipped (no pattern)


class Item(NamedTuple):
    """Keys of one side that act as one tensor (a stacked group: members in index order)."""

    keys: tuple[str, ...]
    desc: Desc


Scope = tuple[str, ...]
_Solution = tuple[list[Found], list[Note]]


def find_conversions(sources: Sequence[KeyView], targets: Sequence[KeyView]
                     ) -> tuple[list[Conversion], list[Unpaired]]:
    """Confident conversions between open ``sources`` and ``targets``, and notes on the rest."""
    target_scopes: dict[Scope, list[Item]] = defaultdict(list)
    for view in targets:
        last = _last_index(view.tokens, len(view.tokens))
        info = view.info
        target_scopes[view.tokens[:last + 1]].append(
            Item((view.key,), Desc(view.tokens[last + 1:], info.shape, info.dtype, False)))
    singles: dict[Scope, list[Item]] = defaultdict(list)
    groups: dict[tuple[Scope, tuple[str, ...], tuple[str, ...]], dict[int, KeyView]] = \
        defaultdict(dict)
    for view in sources if target_scopes else ():
        tokens = view.tokens
        last = _last_index(tokens, len(tokens))
        if tokens[:last + 1] in target_scopes:
            singles[tokens[:last + 1]].append(
                Item((view.key,), Desc(tokens[last + 1:], view.info.shape, view.info.dtype,
                                       False)))
        if last >= 0:
            outer = _last_index(tokens, last)
            scope = tokens[:outer + 1]
            if scope in target_scopes:
                groups[(scope, tokens[outer + 1:last], tokens[last + 1:])][int(tokens[last])] = view
    stacks: dict[Scope, list[Item]] = defaultdict(list)
    for (scope, middle, tail), members in groups.items():
        stacked = _stacked(middle, tail, members)
        if stacked is not None:
            stacks[scope].append(stacked)
    conversions: list[Conversion] = []
    notes: list[Unpaired] = []
    solved: dict[tuple[object, ...], _Solution] = {}
    for scope, wanted in target_scopes.items():
        parts = singles.get(scope, []) + stacks.get(scope, [])
        if not parts:
            continue
        used = _run(solved, wanted, parts, True, conversions, notes)
        left_targets = [t for t in wanted if t.keys[0] not in used]
        left_sources = [s for s in singles.get(scope, []) if s.keys[0] not in used]
        if left_targets and left_sources:
            _run(solved, left_sources, left_targets, False, conversions, notes)
    return conversions, notes


def _run(solved: dict[tuple[object, ...], _Solution], fused: list[Item], parts: list[Item],
         many_to_one: bool, conversions: list[Conversion], notes: list[Unpaired]) -> set[str]:
    """Solve one scope (memoized by its pattern); record conversions and notes; keys used."""
    if len(fused) * len(parts) > MAX_PAIRS_PER_SCOPE:
        return set()
    fused_desc = tuple(f.desc for f in fused)
    part_desc = tuple(p.desc for p in parts)
    memo = (fused_desc, part_desc, many_to_one)
    solution = solved.get(memo)
    if solution is None:
        solution = solved[memo] = solve(fused_desc, part_desc, many_to_one)
    found, doubts = solution
    used: set[str] = set()
    for result in found:
        chosen = [parts[i] for i in result.parts]
        if many_to_one:
            # Stacked groups interleave: expert 0's parts, then expert 1's, … (the ops' order).
            count = len(chosen[0].keys)
            sources = tuple(p.keys[e] for e in range(count) for p in chosen)
            targets = fused[result.fused].keys
        else:
            sources = fused[result.fused].keys
            targets = tuple(p.keys[0] for p in chosen)
        conversions.append(Conversion(sources, targets, result.ops, result.confidence,
                                      result.rule))
        used.update(sources)
        used.update(targets)
    for doubt in doubts:
        key = fused[doubt.fused].keys[0]
        candidates = tuple(parts[i].keys[0] for i in doubt.parts)
        stated = (*doubt.stated, *(None,) * (len(doubt.readings) - len(doubt.stated)))
        statements = tuple(None if s is None else _statement(fused[doubt.fused], parts, *s,
                                                              many_to_one) for s in stated)
        notes.append(Unpaired(None, key, doubt.reason, candidates, doubt.readings, statements)
                     if many_to_one else
                     Unpaired(key, None, doubt.reason, candidates, doubt.readings, statements))
    return used


def _statement(fused: Item, parts: list[Item], order: tuple[int, ...],
               ops: tuple[ConversionOp, ...], many_to_one: bool) -> Statement:
    """The conversion a reading states, its keys laid out as a found conversion's are."""
    chosen = [parts[i] for i in order]
    if many_to_one:
        count = len(chosen[0].keys)
        return conversion([p.keys[e] for e in range(count) for p in chosen], fused.keys, ops)
    return conversion(fused.keys, [p.keys[0] for p in chosen], ops)


def _last_index(tokens: tuple[str, ...], before: int) -> int:
    """Position of the last index segment before ``before`` (``-1``: none)."""
    for position in range(before - 1, -1, -1):
        token = tokens[position]
        if token.isdigit() and (token == "0" or token[0] != "0"):
            return position
    return -1


def _stacked(middle: tuple[str, ...], tail: tuple[str, ...],
             members: dict[int, KeyView]) -> Item | None:
    """The group as one stacked item, when it is numbered ``0..E-1`` with one shape and dtype."""
    count = len(members)
    if count < 2 or set(members) != set(range(count)):
        return None
    first = members[0].info
    if any(m.info.shape != first.shape or m.info.dtype != first.dtype for m in members.values()):
        return None
    keys = tuple(members[i].key for i in range(count))
    return Item(keys, Desc((*middle, "*", *tail), (count, *first.shape), first.dtype, True))
