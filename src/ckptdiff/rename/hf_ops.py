"""One conversion as a transformers 5.x ``WeightConverter``: its patterns and its operations.

transformers collects a converter's tensors per source pattern (one pattern per joined part, its
``*`` standing for the stacked index) and runs its operations on them: ``MergeModulelist`` stacks
each pattern's tensors, ``Concatenate`` joins the patterns in order, ``Chunk`` (equal pieces) or
``Split`` (pieces sized like the model's parameters) cuts one tensor, ``Transpose`` swaps two
dimensions of the one tensor there is. ckptdiff's ops (join runs of parts, then stack; or stack;
or split; transposes anywhere) are rewritten into that order; other shapes are refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ckptdiff.rename.results import Conversion, ConversionOp, Suggestion


@dataclass(frozen=True)
class Converted:
    """A ``WeightConverter``: source patterns (one per part), target patterns, operations."""

    sources: tuple[str, ...]
    targets: tuple[str, ...]
    operations: tuple[str, ...]  # as code: ``MergeModulelist(dim=0)``


def operations(conversion: Conversion, renamed: list[str], exact: bool = False
               ) -> Converted | str:
    """The converter of ``conversion`` (its sources as transformers' renamings leave them), or
    why transformers' operations cannot perform it. ``exact``: for this conversion only (one
    source, one target), not every one of its kind."""
    if any(d is not None and d < 0 for op in conversion.ops
           for d in (op.dim, *(op.dims or ()))):
        return "negative dimensions are not rewritten"
    if len(conversion.targets) > 1:
        made = _split(conversion.ops, conversion.targets)
    else:
        made = _join(conversion.ops, len(renamed))
    if isinstance(made, str):
        return made
    parts, ops = made
    if exact and len(renamed) == 1 and len(conversion.targets) == 1:
        return Converted((f"^{re.escape(renamed[0])}$",), conversion.targets, tuple(ops))
    patterns = _patterns(renamed, conversion.targets, parts)
    if patterns is None:
        return "its keys differ in more than a stacked index (no one pattern per part)"
    return Converted(patterns[0], patterns[1], tuple(ops))


def reordered(suggestion: Suggestion) -> Conversion | None:
    """A rename whose tensor's dimensions are reordered, as a conversion of transposes (the
    permutation as swaps: transformers' ``Transpose`` swaps two dimensions)."""
    if suggestion.axes is None:
        return None
    order, swaps = list(range(len(suggestion.axes))), []
    for position, axis in enumerate(suggestion.axes):
        at = order.index(axis)
        if at != position:
            order[position], order[at] = order[at], order[position]
            swaps.append(ConversionOp("transpose", dims=(position, at)))
    if not swaps:
        return None
    return Conversion((suggestion.source_key,), (suggestion.target_key,), tuple(swaps),
                      suggestion.confidence, suggestion.rule)


def _swap(dim: int, pair: tuple[int, int]) -> int:
    a, b = pair
    return b if dim == a else a if dim == b else dim


def _join(ops: tuple[ConversionOp, ...], count: int) -> tuple[int, list[str]] | str:
    """(parts, operations) of a many-to-one conversion, transposes moved to the end."""
    core: list[ConversionOp] = []
    pending: list[tuple[int, int]] = []
    for op in ops:
        if op.op == "transpose" and op.dims is not None:
            pending.append((op.dims[0], op.dims[1]))
        elif op.op == "concat" and op.dim is not None:
            dim = op.dim
            for pair in reversed(pending):  # cat of transposed = transposed cat, dims swapped
                dim = _swap(dim, pair)
            core.append(ConversionOp("concat", dim=dim, parts=op.parts or count))
        elif op.op == "stack" and op.dim is not None:
            at = op.dim
            pending = [(a + (a >= at), b + (b >= at)) for a, b in pending]
            core.append(ConversionOp("stack", dim=at))
        else:
            return f"{op.op} has no transformers operation in a join"
    transposes = [f"Transpose(dim0={a}, dim1={b})" for a, b in pending]
    kinds = [op.op for op in core]
    if not kinds and transposes and count == 1:
        return 1, transposes
    if kinds == ["stack"]:
        return 1, [f"MergeModulelist(dim={core[0].dim})", *transposes]
    if kinds == ["concat"] and core[0].parts == count:
        return count, [f"Concatenate(dim={core[0].dim})", *transposes]
    if kinds == ["concat", "stack"] and core[0].parts and count % core[0].parts == 0:
        joined, stacked = core[0].dim or 0, core[1].dim or 0
        # stack each part's tensors first: the join's dimension moves up past the new one
        return core[0].parts, [f"MergeModulelist(dim={stacked})",
                               f"Concatenate(dim={joined + (stacked <= joined)})", *transposes]
    return f"{', '.join(kinds)}: no transformers chain of operations does this"


def _split(ops: tuple[ConversionOp, ...], targets: tuple[str, ...]) -> tuple[int, list[str]] | str:
    """(1, operations) of a split, transposes moved before the cut."""
    before: list[str] = []
    cut: ConversionOp | None = None
    dim = 0
    for op in ops:
        if op.op == "transpose" and op.dims is not None:
            pair = (op.dims[0], op.dims[1])
            before.append(f"Transpose(dim0={pair[0]}, dim1={pair[1]})")
            if cut is not None:  # transposed pieces = pieces of the transposed, dims swapped
                dim = _swap(dim, pair)
        elif op.op == "chunk" and cut is None and op.dim is not None:
            cut, dim = op, op.dim
        else:
            return f"{op.op} has no transformers operation in a split"
    if cut is None or len(cut.sizes or ()) != len(targets):
        return "no split to perform"
    sizes = set(cut.sizes or ())
    return 1, [*before, f"Chunk(dim={dim})" if len(sizes) == 1 else f"Split(dim={dim})"]


def _patterns(renamed: list[str], targets: tuple[str, ...],
              parts: int) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """Source patterns (one per part) and target patterns, scoped below the layer index."""
    names = [name.split(".") for name in (*renamed, *targets)]
    shared, most = 0, min(len(n) for n in names) - 1
    while shared < most and len({n[shared] for n in names}) == 1:
        shared += 1
    scope = names[0][:shared]
    numbered = [i for i, segment in enumerate(scope) if segment.isdigit()]
    context = scope[numbered[-1] + 1:] if numbered else scope
    sources = []
    for part in range(parts):
        members = [name.split(".")[shared:] for name in renamed[part::parts]]
        if len({len(m) for m in members}) != 1:
            return None
        pattern = [re.escape(s) for s in context]
        for position, values in enumerate(zip(*members, strict=True)):
            if len(set(values)) == 1:
                pattern.append(re.escape(values[0]))
            elif all(v.isdigit() for v in values) and position < len(members[0]) - 1:
                pattern.append("*")  # transformers' glob for the stacked index
            else:
                return None
        sources.append(".".join(pattern))
    prefix = ".".join(context) + "." if context else ""
    return tuple(sources), tuple(prefix + ".".join(t.split(".")[shared:]) for t in targets)
