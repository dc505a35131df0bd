"""Performing conversions: the bytes of a stacked, concatenated or split tensor from its parts.

A conversion's ``ops`` run on a list of tensors (``rename.results.ConversionOp``). The common
case — experts stacked and their projections joined along dim 0 — is, in C order, nothing but the
parts' bytes one after another: those outputs stream chunk by chunk from the source, never holding
more than one chunk. Anything else (a join along a later dim, a transpose, a split) holds one
output's parts in memory and runs the ops with numpy on raw elements (a void dtype of the
element's size), so every dtype, bfloat16 and float8 included, moves unchanged. A LoRA merge
(``merge_lora``) computes: :mod:`ckptdiff.fix.lora_merge`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from ckptdiff.dtypes import itemsize
from ckptdiff.errors import MissingDependencyError, UsageError
from ckptdiff.fix.lora_merge import merge, merged_shape
from ckptdiff.fix.remap_sources import TensorSource
from ckptdiff.fix.remap_write import Output
from ckptdiff.manifest import Manifest
from ckptdiff.rename.results import Conversion, ConversionOp

Shape = tuple[int, ...]


def result_shapes(shapes: Sequence[Shape], ops: Sequence[ConversionOp]) -> list[Shape]:
    """The shapes the ops leave, from the parts' shapes (a ``UsageError`` when they misfit)."""
    current = [tuple(s) for s in shapes]
    for op in ops:
        dim = op.dim or 0
        if op.op in ("concat", "stack", "chunk"):
            # A dim past the parts' rank (a hand-written rules file) would slice a shape wrong.
            _check_dim(op.op, dim, {len(s) for s in current}, 1 if op.op == "stack" else 0)
        if op.op == "concat":
            runs = op.parts or len(current)
            if runs < 1 or len(current) % runs:
                raise UsageError(f"concat of {runs} does not divide {len(current)} tensors")
            joined = []
            for start in range(0, len(current), runs):
                run = current[start:start + runs]
                if len({s[:dim] + s[dim + 1:] for s in run}) != 1:
                    raise UsageError(f"concat along dim {dim}: shapes {run} differ elsewhere")
                joined.append((*run[0][:dim], sum(s[dim] for s in run), *run[0][dim + 1:]))
            current = joined
        elif op.op == "stack":
            if len(set(current)) != 1:
                raise UsageError(f"stack of differing shapes {sorted(set(current))}")
            current = [(*current[0][:dim], len(current), *current[0][dim:])]
        elif op.op == "chunk":
            if len(current) != 1:
                raise UsageError(f"chunk splits one tensor, not {len(current)}")
            (whole,) = current
            sizes = op.sizes if op.sizes is not None else _equal(whole[dim], op.parts or 1, dim)
            if sum(sizes) != whole[dim]:
                raise UsageError(f"chunk sizes {list(sizes)} do not add up to {whole[dim]}")
            current = [(*whole[:dim], size, *whole[dim + 1:]) for size in sizes]
        elif op.op == "transpose":
            a, b = op.dims or (0, 1)
            for axis in (a, b):
                _check_dim(op.op, axis, {len(s) for s in current}, 0)
            current = [_swapped(s, a, b) for s in current]
        elif op.op == "merge_lora":
            if len(ops) != 1:
                raise UsageError("remap performs merge_lora only as a conversion's one op")
            current = [merged_shape(current, op)]
        else:
            raise UsageError(f"remap cannot perform the conversion op {op.op!r}")
    return current


def conversion_outputs(conversions: Sequence[Conversion], stored: Manifest) -> list[Output]:
    """One output per conversion target, each naming its parts and the ops that make it.

    A key that two conversions make (one stated twice in a rules file) is a ``UsageError``:
    written twice, the file would hold two tensors under one name.
    """
    outputs: list[Output] = []
    made: set[str] = set()
    for conversion in conversions:
        twice = [k for k in conversion.targets if k in made or conversion.targets.count(k) > 1]
        if twice:
            raise UsageError(f"{twice[0]}: made by more than one conversion; state it once")
        made.update(conversion.targets)
        parts = tuple(stored.by_key[key] for key in conversion.sources)
        computed = any(op.op == "merge_lora" for op in conversion.ops)  # in the base's dtype
        if not computed and len({p.dtype for p in parts}) != 1:
            raise UsageError(f"{conversion.targets[0]}: its parts have different dtypes")
        try:
            shapes = result_shapes([p.shape for p in parts], conversion.ops)
        except UsageError as exc:
            raise UsageError(f"conversion making {conversion.targets[0]!r}: {exc}") from None
        if len(shapes) != len(conversion.targets):
            raise UsageError(f"{conversion.rule}: {len(shapes)} results for "
                             f"{len(conversion.targets)} targets")
        outputs += [Output(target, parts[0], shape, None, parts, conversion.ops, piece)
                    for piece, (target, shape) in enumerate(zip(conversion.targets, shapes,
                                                                strict=True))]
    return outputs


def streams_in_order(ops: Sequence[ConversionOp]) -> bool:
    """Whether the result's bytes are the parts' bytes one after another (joins along dim 0)."""
    return all(op.op in ("concat", "stack") and (op.dim or 0) == 0 for op in ops)


def converted_bytes(reader: TensorSource, out: Output) -> Iterator[bytes]:
    """The bytes of the converted tensor ``out`` (streamed when the layout allows), its
    dimensions reordered after the ops when it has ``axes`` (a rules file's transform)."""
    if out.axes is not None:
        yield reordered(b"".join(_made(reader, out)), _before_axes(out), out.axes,
                        out.source.dtype)
        return
    yield from _made(reader, out)


def _made(reader: TensorSource, out: Output) -> Iterator[bytes]:
    if streams_in_order(out.ops):
        for part in out.parts:
            yield from reader.chunks(part)
        return
    if len(out.ops) == 1 and out.ops[0].op == "merge_lora":
        raws = [b"".join(reader.chunks(p)) for p in out.parts]
        yield merge(raws, [p.dtype for p in out.parts], [p.shape for p in out.parts], out.ops[0])
        return
    try:
        import numpy
    except ImportError:
        raise MissingDependencyError("numpy", "torch", "performing a conversion") from None
    element = numpy.dtype((numpy.void, itemsize(out.source.dtype) or 1))
    arrays = [numpy.frombuffer(b"".join(reader.chunks(p)), dtype=element).reshape(p.shape)
              for p in out.parts]
    yield numpy.ascontiguousarray(run_ops(arrays, out.ops)[out.piece]).tobytes()


def run_ops(arrays: list[Any], ops: Sequence[ConversionOp]) -> list[Any]:
    """The ops on numpy arrays, as :func:`result_shapes` does them on shapes."""
    import numpy

    for op in ops:
        dim = op.dim or 0
        if op.op == "concat":
            runs = op.parts or len(arrays)
            arrays = [numpy.concatenate(arrays[i:i + runs], axis=dim)
                      for i in range(0, len(arrays), runs)]
        elif op.op == "stack":
            arrays = [numpy.stack(arrays, axis=dim)]
        elif op.op == "chunk":
            # Without sizes: equal parts, which result_shapes checked the dim divides into.
            cuts = (op.parts or 1) if op.sizes is None else numpy.cumsum(op.sizes)[:-1]
            arrays = numpy.split(arrays[0], cuts, axis=dim)
        elif op.op == "transpose":
            a, b = op.dims or (0, 1)
            arrays = [numpy.swapaxes(x, a, b) for x in arrays]
    return arrays


def without_parts(outputs: list[Output], converted: Sequence[Output],
                  dropped: list[str]) -> list[Output]:
    """``outputs`` less the source tensors that conversions consume, plus the converted ones.

    A tensor that keeps a name a conversion makes is left out (``dropped`` says so).
    """
    consumed = {p.key for o in converted for p in o.parts}
    made = {o.key for o in converted}
    kept = []
    for out in outputs:
        if out.source.key in consumed:
            continue  # written as part of a converted tensor, not left out
        if out.key in made:
            dropped.append(f"{out.source.key} (displaced by a converted tensor)")
        else:
            kept.append(out)
    return kept + list(converted)


def _check_dim(op: str, dim: int, ranks: set[int], extra: int) -> None:
    """A ``UsageError`` unless ``dim`` is a dimension of every part (``extra``: one past the
    last is allowed, where ``stack`` inserts a new dimension)."""
    if dim < 0 or any(dim >= rank + extra for rank in ranks):
        raise UsageError(f"{op} along dim {dim}: the tensors have {min(ranks)} dimensions")


def _swapped(shape: Shape, a: int, b: int) -> Shape:
    swapped = list(shape)
    swapped[a], swapped[b] = swapped[b], swapped[a]
    return tuple(swapped)


def _equal(length: int, parts: int, dim: int) -> tuple[int, ...]:
    """``parts`` equal sizes of ``length`` (a ``chunk`` without ``sizes``), when they are equal."""
    if length % parts:
        raise UsageError(f"chunk into {parts} equal parts along dim {dim}: the tensor has "
                         f"{length} there, which {parts} does not divide (state the sizes)")
    return (length // parts,) * parts


def reordered(raw: bytes, shape: Sequence[int], axes: Sequence[int], dtype: str) -> bytes:
    """``raw``, a ``dtype`` tensor of ``shape``, with its dimensions reordered by ``axes``."""
    try:
        import numpy
    except ImportError:
        raise MissingDependencyError("numpy", "torch", "reordering tensor dimensions") from None

    values = numpy.frombuffer(raw, dtype=numpy.dtype((numpy.void, itemsize(dtype) or 1)))
    return numpy.ascontiguousarray(values.reshape(tuple(shape)).transpose(axes)).tobytes()


def _before_axes(out: Output) -> list[int]:
    """The converted tensor's shape before its ``axes`` (``out.shape`` is after them)."""
    axes = out.axes or ()
    before = [0] * len(axes)
    for position, axis in enumerate(axes):
        before[axis] = out.shape[position]
    return before
