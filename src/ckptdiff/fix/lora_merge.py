"""Merging a LoRA adapter into its base weight, from raw bytes: ``W + scale·B·A``.

One output at a time: the base weight and its two adapter halves are read, decoded to float32
(float64 stays float64), the update is accumulated in that precision, and the sum is encoded back
in the base weight's dtype — what peft's ``merge_and_unload`` does on a CPU. bfloat16 is decoded
and encoded by its bits (round to nearest even), so numpy needs no bfloat16 type.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ckptdiff.errors import MissingDependencyError, UsageError
from ckptdiff.rename.results import ConversionOp

Shape = tuple[int, ...]
MERGEABLE = ("float32", "float16", "bfloat16", "float64")


def merged_shape(shapes: Sequence[Shape], op: ConversionOp) -> Shape:
    """The shape ``merge_lora`` leaves from ``[W, A, B]`` (a ``UsageError`` when they misfit)."""
    if len(shapes) != 3:
        raise UsageError(f"merge_lora takes [W, A, B], not {len(shapes)} tensors")
    weight, a, b = shapes
    if len(a) != 2 or len(b) != 2 or a[0] != b[1]:
        raise UsageError(f"merge_lora: lora_A {list(a)} and lora_B {list(b)} are no pair")
    update = (a[1], b[0]) if op.fan_in_fan_out else (b[0], a[1])
    if tuple(weight) != update:
        raise UsageError(f"merge_lora: the update is {list(update)}, the weight {list(weight)}")
    return tuple(weight)


def merge(raws: Sequence[bytes], dtypes: Sequence[str], shapes: Sequence[Shape],
          op: ConversionOp) -> bytes:
    """The bytes of ``W + scale·B·A`` in ``W``'s dtype, from the raw bytes of W, A and B."""
    try:
        import numpy
    except ImportError:
        raise MissingDependencyError("numpy", "torch", "merging a LoRA adapter") from None
    for dtype in dtypes:
        if dtype not in MERGEABLE:
            raise UsageError(f"merge_lora: cannot compute in {dtype} (only "
                             f"{', '.join(MERGEABLE)})")
    wide = numpy.float64 if "float64" in dtypes else numpy.float32
    weight, a, b = (decode(raw, dtype, shape).astype(wide, copy=False)
                    for raw, dtype, shape in zip(raws, dtypes, shapes, strict=True))
    update = b @ a
    if op.fan_in_fan_out:
        update = update.T
    total = weight + numpy.asarray(op.scale if op.scale is not None else 1.0, dtype=wide) * update
    return encode(total, dtypes[0])


def decode(raw: bytes, dtype: str, shape: Shape) -> Any:
    """A numpy array of ``raw`` little-endian elements of ``dtype``, as float32 for bfloat16."""
    import numpy

    if dtype == "bfloat16":
        bits = numpy.frombuffer(raw, dtype="<u2").astype(numpy.uint32) << 16
        return bits.view(numpy.float32).reshape(shape)
    names = {"float32": "<f4", "float16": "<f2", "float64": "<f8"}
    return numpy.frombuffer(raw, dtype=names[dtype]).reshape(shape)


def encode(values: Any, dtype: str) -> bytes:
    """The little-endian bytes of ``values`` in ``dtype`` (bfloat16 rounded to nearest even)."""
    import numpy

    if dtype == "bfloat16":
        bits = numpy.ascontiguousarray(values, dtype=numpy.float32).view(numpy.uint32)
        rounded = bits + 0x7FFF + ((bits >> 16) & 1)
        nan = numpy.isnan(values)
        out = (rounded >> 16).astype("<u2")
        out[nan] = 0x7FC0
        return bytes(out.tobytes())
    names = {"float32": "<f4", "float16": "<f2", "float64": "<f8"}
    return bytes(numpy.ascontiguousarray(values, dtype=names[dtype]).tobytes())
