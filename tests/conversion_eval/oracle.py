"""The oracle that performs conversion ops with torch, independent of ckptdiff's numpy code."""

from __future__ import annotations

from typing import Any

from ckptdiff.rename.results import ConversionOp


def perform(ops: tuple[ConversionOp, ...], tensors: list[Any]) -> list[Any]:
    """The conversion's ops on torch tensors, as transformers' operations would run them."""
    import torch

    current = list(tensors)
    for op in ops:
        dim = op.dim or 0
        if op.op == "concat":
            runs = op.parts or len(current)
            current = [torch.cat(current[i:i + runs], dim=dim)
                       for i in range(0, len(current), runs)]
        elif op.op == "stack":
            current = [torch.stack(current, dim=dim)]
        elif op.op == "chunk":
            current = list(torch.split(current[0], list(op.sizes or ()), dim=dim))
        elif op.op == "transpose":
            a, b = op.dims or (0, 1)
            current = [t.transpose(a, b) for t in current]
        else:
            raise AssertionError(f"no oracle for op {op.op}")
    return current
