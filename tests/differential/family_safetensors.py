"""safetensors against the library's own header reading (``safe_open`` + ``get_slice``)."""

from __future__ import annotations

import random

from tests.differential import safetensors_edits
from tests.differential.families import Data, Family, Seed
from tests.differential.sides import Reading


def seeds() -> list[Seed]:
    """safetensors files written by ``safetensors.torch.save``."""
    import torch
    from safetensors.torch import save

    generator = torch.Generator().manual_seed(1)
    objects = {
        "pair": {"a": torch.randn(2, 3, generator=generator), "b": torch.arange(4)},
        "dtypes": {"h": torch.ones(3, dtype=torch.float16), "z": torch.zeros(0, 2),
                   "s": torch.tensor(1.0), "u": torch.ones(2, dtype=torch.uint8)},
    }
    made = [Seed(f"st/{name}", "safetensors", save(obj), ".safetensors")
            for name, obj in objects.items()]
    meta = save(objects["pair"], metadata={"format": "pt"})
    return [*made, Seed("st/metadata", "safetensors", meta, ".safetensors")]


def mutate(seed: Seed, others: list[Seed], rng: random.Random) -> tuple[str, Data]:
    """A header edit (tests/differential/safetensors_edits.py)."""
    assert isinstance(seed.data, bytes)
    return safetensors_edits.mutate(seed.data, rng)


def load(path: str) -> Reading:
    """The library's own reading of the header, as ``get_slice`` reports it without
    materializing: a dtype torch lacks (F6_*) or a packed one (F4, halved by ``get_tensor``) is
    the torch loader's matter, judged by the verdict, not the file's."""
    from safetensors import safe_open

    from ckptdiff.dtypes import SAFETENSORS_DTYPES

    out = []
    with safe_open(path, "np") as handle:
        for key in handle.keys():  # noqa: SIM118 - safe_open is not a dict
            view = handle.get_slice(key)
            out.append((key, tuple(view.get_shape()),
                        SAFETENSORS_DTYPES.get(view.get_dtype(), "other")))
    return Reading(True, tuple(sorted(out)))


FAMILIES = [Family("safetensors", seeds, mutate, load, imports=("safetensors",))]
