"""Shape arithmetic inside one scope: which parts make which fused tensor, and by what ops.

A fused tensor ``F`` is explained by parts ``P1..Pk`` (k ≥ 2) when all their dims but one, ``d``,
equal ``F``'s and their sizes along ``d`` sum to ``F``'s exactly; a stacked group of ``E`` equal
tensors (``experts.{i}``) counts as one part of shape ``[E, …]``, and a single stacked group
equal to ``F`` explains it alone. Only when no explanation fits as is, ``F`` with its last two
dims swapped is tried (the ops then end with a transpose).

An explanation is kept only when it is the fused tensor's one explanation, none of its parts could
belong to another fused tensor (a fit by size alone yields parts that another fused tensor's name
spells), and the names say the parts' order (:mod:`fusion_order`); else a
note says why not. Works on descriptors (names relative to the scope, shapes, dtypes) so that the
driver solves each distinct layer pattern once, not once per layer.
"""

from __future__ import annotations

import json
from collections import defaultdict
from itertools import combinations
from typing import NamedTuple

from ckptdiff.dtypes import can_convert
from ckptdiff.rename.fusion_order import (
    SPELLED,
    Readings,
    attention_readings,
    distinguishing,
    is_attention,
    order,
    order_readings,
    spells,
    with_attention,
)
from ckptdiff.rename.results import ConversionOp

MAX_CANDIDATES = 12  # parts that fit one fused dim; beyond this the subsets are not enumerated


class Desc(NamedTuple):
    """One tensor (or stacked group) as the solver sees it."""

    rel: tuple[str, ...]  # name within the scope; "*" where a stacked group's index was
    shape: tuple[int, ...]
    dtype: str
    stacked: bool


class Found(NamedTuple):
    """A confident explanation: fused index, part indices in fused order, ops, confidence."""

    fused: int
    parts: tuple[int, ...]
    ops: tuple[ConversionOp, ...]
    confidence: float
    rule: str


class Note(NamedTuple):
    """Why fused tensor ``fused`` stays unexplained, and the parts it might have had.

    ``readings``: the explanations it was declined between, when it was declined as ambiguous;
    ``stated`` (aligned): the parts in the order each reading puts them and the ops performing
    it, ``None`` where no ops can (interleaved q/k/v, an order the names leave unsaid).
    """

    fused: int
    reason: str
    parts: tuple[int, ...]
    readings: tuple[str, ...] = ()
    stated: tuple[tuple[tuple[int, ...], tuple[ConversionOp, ...]] | None, ...] = ()


class _Option(NamedTuple):
    parts: tuple[int, ...]
    dim: int | None
    transposed: bool


def solve(fused: tuple[Desc, ...], parts: tuple[Desc, ...],
          many_to_one: bool) -> tuple[list[Found], list[Note]]:
    """Confident explanations of ``fused`` tensors by ``parts``, and notes on the doubtful."""
    options = _unclaimed([_options(f, parts, many_to_one) for f in fused], fused, parts)
    users: dict[int, set[int]] = defaultdict(set)
    for index, found in enumerate(options):
        for option in found:
            for part in option.parts:
                users[part].add(index)
    results: list[Found] = []
    notes: list[Note] = []
    for index, found in enumerate(options):
        if not found:
            continue
        if len(found) > 1:
            combinations_ = [" + ".join(_label(parts[p]) for p in o.parts) for o in found]
            shown = "; ".join(combinations_[:4])
            notes.append(Note(index, f"sizes fit several combinations ({shown}): not guessing",
                              tuple(sorted({p for o in found for p in o.parts})),
                              tuple(combinations_)))
            continue
        option = found[0]
        rivals = {u for p in option.parts for u in users[p]} - {index}
        if rivals:
            other = "/".join(sorted(_label(fused[r]) for r in rivals))
            notes.append(Note(index, f"its parts also fit '{other}': not guessing",
                              option.parts))
            continue
        outcome = _ordered(fused[index], option, parts, many_to_one)
        if isinstance(outcome, Note):
            notes.append(outcome._replace(fused=index))
        elif isinstance(outcome, str):
            notes.append(Note(index, outcome, option.parts))
        else:
            results.append(outcome._replace(fused=index))
    return results, notes


def _unclaimed(options: list[list[_Option]], fused: tuple[Desc, ...],
               parts: tuple[Desc, ...]) -> list[list[_Option]]:
    """``options`` less those that fit by size only where names say more: a fused tensor whose
    name spells one of its options keeps only the spelled ones, and no option takes parts that
    another fused tensor's name spells. (``qkv_proj`` ``[3D, D]`` fits ``up_proj`` +
    ``gate_proj`` when ``I`` is ``1.5 D``, and ``up_gate_proj`` ``[2I, D]`` fits ``q/k/v_proj``:
    sizes alone leave both open, the names settle ``up_gate_proj``.)"""
    spelled = [[_spelled_by(f, o, parts) for o in found] for f, found in zip(fused, options,
                                                                          strict=True)]
    claims: dict[int, set[int]] = defaultdict(set)
    for index, (found, marks) in enumerate(zip(options, spelled, strict=True)):
        for option, mark in zip(found, marks, strict=True):
            for part in option.parts if mark else ():
                claims[part].add(index)
    return [[o for o, mark in zip(found, marks, strict=True)
             if mark or not (any(marks) or any(claims[p] - {index} for p in o.parts))]
            for index, (found, marks) in enumerate(zip(options, spelled, strict=True))]


def _spelled_by(f: Desc, option: _Option, parts: tuple[Desc, ...]) -> bool:
    tokens = distinguishing([parts[i].rel for i in option.parts])
    return tokens is not None and spells(f.rel, tokens)


def _options(f: Desc, parts: tuple[Desc, ...], many_to_one: bool) -> list[_Option]:
    found: list[_Option] = []
    for transposed in (False, True) if many_to_one else (False,):
        if transposed and (found or len(f.shape) < 2 or f.shape[-1] == f.shape[-2]):
            break
        goal = f.shape if not transposed else (*f.shape[:-2], f.shape[-1], f.shape[-2])
        fitting = [i for i, p in enumerate(parts) if _leaves_agree(f, p, many_to_one)
                   and len(p.shape) == len(goal) and _dtypes_fit(f, p, many_to_one)]
        found += [_Option((i,), None, transposed) for i in fitting
                  if parts[i].stacked and parts[i].shape == goal]
        for dim in range(len(goal)):
            candidates = [i for i in fitting if parts[i].shape[dim] < goal[dim] and all(
                a == b for j, (a, b) in enumerate(zip(parts[i].shape, goal, strict=True))
                if j != dim)]
            if len(candidates) < 2 or len(candidates) > MAX_CANDIDATES:
                continue
            for size in range(2, len(candidates) + 1):
                for subset in combinations(candidates, size):
                    stacked = {parts[i].stacked for i in subset}
                    if (len(stacked) == 1 and not (stacked == {True} and dim == 0)
                            and sum(parts[i].shape[dim] for i in subset) == goal[dim]):
                        found.append(_Option(subset, dim, transposed))
    return found


def _leaves_agree(f: Desc, p: Desc, many_to_one: bool) -> bool:
    if not f.rel or not p.rel:  # a key ending in its index (Keras' vars/0) names no leaf
        return False
    fused_leaf, part_leaf = f.rel[-1], p.rel[-1]
    if fused_leaf in ("weight", "bias") or part_leaf in ("weight", "bias") and not many_to_one:
        return fused_leaf == part_leaf
    return fused_leaf.endswith("bias") == (part_leaf == "bias")


def _dtypes_fit(f: Desc, p: Desc, many_to_one: bool) -> bool:
    return can_convert(p.dtype, f.dtype) if many_to_one else can_convert(f.dtype, p.dtype)


def _label(d: Desc) -> str:
    return ".".join(d.rel)


def _ordered(f: Desc, option: _Option, parts: tuple[Desc, ...],
             many_to_one: bool) -> Found | Note | str:
    """The explanation with its parts in fused order and its ops, or why the order is unknown
    (a note with the readings, where the names allow several)."""
    members = [parts[i] for i in option.parts]
    if len({p.dtype for p in members}) > 1:
        return "sizes fit, but the parts' dtypes differ: not guessing"
    rank = len(f.shape)
    tail = (ConversionOp("transpose", dims=(rank - 2, rank - 1)),) if option.transposed else ()
    stacked = members[0].stacked
    per = None
    if stacked:
        star = members[0].rel.index("*")
        per = f"{members[0].rel[star - 1]}.{{i}}" if star else "{i}"
    if option.dim is None:
        rule = f"stack {per}" + (", transpose" if option.transposed else "")
        return Found(0, option.parts, (ConversionOp("stack", dim=0), *tail), 0.97, rule)
    tokens = distinguishing([p.rel for p in members])
    if tokens is None:
        return "sizes fit, but the parts' names differ in more than one place: not guessing"
    widths = [p.shape[option.dim] for p in members]
    if is_attention(tokens) or with_attention(tokens):
        # A name that spells the parts (``gqkv``) orders the blocked reading; q/k/v's own
        # order is the role order, and numbers among mixed parts place nothing.
        spelled = None if is_attention(tokens) else order(f.rel, tokens)
        positions = spelled[0] if spelled is not None and spelled[1] == SPELLED else None
        return _note(attention_readings(tokens, widths, option.dim, f.shape[option.dim],
                                        positions), option, parts, per, tail, many_to_one)
    ranked = order(f.rel, tokens)
    if ranked is None:
        return _note(order_readings(tokens, widths, option.dim), option, parts, per, tail,
                     many_to_one)
    positions, confidence = ranked
    by_position = sorted(range(len(members)), key=lambda i: positions[i])
    ordered_parts = tuple(option.parts[i] for i in by_position)
    names = ",".join(tokens[i] for i in by_position)
    ops = _ops(option.dim, [parts[i] for i in ordered_parts], per, tail, many_to_one)
    if not many_to_one:
        return Found(0, ordered_parts, ops, confidence,
                     f"split along dim {option.dim} into {names}")
    rule = (f"stack {per}, concatenate {names}" if stacked
            else f"concatenate {names} along dim {option.dim}")
    return Found(0, ordered_parts, ops, confidence,
                 rule + (", transpose" if option.transposed else ""))


def _ops(dim: int, ordered: list[Desc], per: str | None, tail: tuple[ConversionOp, ...],
         many_to_one: bool) -> tuple[ConversionOp, ...]:
    """The ops that join the ``ordered`` parts into the fused tensor, or split it into them."""
    if not many_to_one:
        sizes = tuple(p.shape[dim] for p in ordered)
        return (ConversionOp("chunk", dim=dim, parts=len(sizes), sizes=sizes),)
    if per is not None:
        return (ConversionOp("concat", dim=dim - 1, parts=len(ordered), per=per),
                ConversionOp("stack", dim=0), *tail)
    return (ConversionOp("concat", dim=dim, parts=len(ordered)), *tail)


def _note(found: Readings, option: _Option, parts: tuple[Desc, ...], per: str | None,
          tail: tuple[ConversionOp, ...], many_to_one: bool) -> Note:
    """The note of a declined order, with each reading's parts in order and its ops; a split of
    a transposed or stacked tensor is not stated (its ops would need more than a chunk)."""
    assert option.dim is not None
    stated: list[tuple[tuple[int, ...], tuple[ConversionOp, ...]] | None] = []
    for order_of in found.orders:
        ordered = None if order_of is None else tuple(option.parts[i] for i in order_of)
        if ordered is None or (not many_to_one and (tail or per is not None)):
            stated.append(None)
            continue
        stated.append((ordered, _ops(option.dim, [parts[i] for i in ordered], per, tail,
                                     many_to_one)))
    readings = tuple(text if entry is None else _naming_ops(text, entry[1])
                     for text, entry in zip(found.readings, stated, strict=False))
    return Note(0, found.reason, option.parts, readings + found.readings[len(readings):],
                tuple(stated))


def _naming_ops(reading: str, ops: tuple[ConversionOp, ...]) -> str:
    """``reading`` naming the ops its statement performs (a stacked group's per-expert concat
    and stack, a transpose after it), as a rules file writes them: inside the reading's closing
    parenthesis where it has one ("(transformers' Chunk(dim=0); conversion ops […])"), else in
    one of its own."""
    listed = f"conversion ops {json.dumps([op.to_dict() for op in ops])}"
    if reading.endswith(")"):
        return f"{reading[:-1]}; {listed})"
    return f"{reading} ({listed})"
