"""Torch seed checkpoints for differential fuzzing, made by torch itself (tiny tensors).

Each seed is bytes plus the suffix its file needs. They are built in memory from fixed values,
so a seed, and every mutation drawn from it with a fixed RNG seed, is the same on every run.
"""

from __future__ import annotations

import io
import warnings
from typing import Any

from tests.differential.families import Seed


class _StatefulParameter:
    """Pickles as ``_rebuild_parameter_with_state(data, False, {}, state)``: the call torch.save
    writes for a parameter carrying Python attributes, with a ``state`` of our choosing."""

    def __init__(self, data: Any, state: dict[str, Any]) -> None:
        self.data = data
        self.state = state

    def __reduce_ex__(self, protocol: object) -> tuple[Any, ...]:
        import collections

        import torch

        return (torch._utils._rebuild_parameter_with_state,
                (self.data, False, collections.OrderedDict(), self.state))


class _FromTypeV2:
    """Pickles as ``_rebuild_from_type_v2(_rebuild_tensor_v2 …, Tensor, args, state)``."""

    def __init__(self, data: Any, state: object) -> None:
        self.data = data
        self.state = state

    def __reduce_ex__(self, protocol: object) -> tuple[Any, ...]:
        import torch

        func, args = self.data.__reduce_ex__(2)
        return (torch._tensor._rebuild_from_type_v2, (func, torch.Tensor, args, self.state))


def state_dicts() -> dict[str, dict[Any, Any]]:
    """The objects saved as torch seeds, by name."""
    import torch

    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(3, 4, generator=generator)
    empty = torch.empty(0)
    shared = torch.arange(12, dtype=torch.int64)
    return {
        "linear": {"weight": weight, "bias": torch.zeros(3)},
        "mixed": {"f16": torch.ones(2, 2, dtype=torch.float16),
                  "i8": torch.arange(4).to(torch.int8), "bool": torch.tensor([True, False]),
                  "scalar": torch.tensor(2.5), "bf16": torch.zeros(2, dtype=torch.bfloat16)},
        "views": {"full": shared, "tail": shared[4:], "grid": shared.view(3, 4)[:, 1]},
        "params": {"p": torch.nn.Parameter(weight.clone()),
                   "frozen": torch.nn.Parameter(torch.ones(2), requires_grad=False)},
        "empty_views": {"x": empty, "y": empty.view(torch.int32)},
        "bytes_keys": {b"w": weight},
        "nested": {"model": {"a": torch.ones(2)}, "step": 3},
        "with_state": {"p": _StatefulParameter(weight.clone(), {"data": torch.zeros(5, 5)}),
                       "q": _StatefulParameter(torch.ones(2), {"tag": "kept"})},
        "from_type_v2": {"t": _FromTypeV2(torch.ones(2, 3), {"data": torch.zeros(7)}),
                         "u": _FromTypeV2(torch.ones(2), ({}, {"note": 1}))},
        "complex": {"c": torch.zeros(2, dtype=torch.complex64).conj(), "r": torch.ones(2)},
    }


def torch_bytes(obj: object, legacy: bool, protocol: int = 2) -> bytes:
    """``torch.save(obj)`` into memory, in the zip or the legacy format."""
    import torch

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.save(obj, buffer, _use_new_zipfile_serialization=not legacy,
                   pickle_protocol=protocol)
    return buffer.getvalue()


def torch_seeds() -> list[Seed]:
    """Every torch object above in both formats, plus the linear one at protocols 4 and 5."""
    seeds = []
    for name, obj in state_dicts().items():
        seeds.append(Seed(f"zip/{name}", "torch-zip", torch_bytes(obj, False), ".pt"))
        seeds.append(Seed(f"legacy/{name}", "torch-legacy", torch_bytes(obj, True), ".pt"))
    linear = state_dicts()["linear"]
    for protocol in (4, 5):
        seeds.append(Seed(f"zip/linear_p{protocol}", "torch-zip",
                          torch_bytes(linear, False, protocol), ".pt"))
        seeds.append(Seed(f"legacy/linear_p{protocol}", "torch-legacy",
                          torch_bytes(linear, True, protocol), ".pt"))
    return seeds
