"""torch zip and legacy files against ``torch.load(weights_only=True, mmap=True)``.

A bytes key torch returns is spelled ``b'w'``, as ckptdiff must spell it: ``load_state_dict``
never matches it to the parameter ``w``.
"""

from __future__ import annotations

import random
import warnings
from typing import Any

from tests.differential import torch_edits
from tests.differential.families import Data, Family, Seed
from tests.differential.seeds import torch_seeds
from tests.differential.sides import Reading

from ckptdiff.dtypes import TORCH_DTYPES

# What torch says when a file needs a device this (CPU-only) machine lacks: storages saved on a
# GPU, ``mps`` or a ``privateuseone`` backend (retried with ``map_location="cpu"``, which reads
# the same tensors), or a ``torch.cuda`` tensor class called (no retry helps; on a CUDA machine
# the call succeeds).
_NO_DEVICE = ("torch.cuda.is_available() is False", "Torch not compiled with CUDA enabled",
              "Storage device not recognized", "device module is not registered")


def _key(key: object) -> str:
    if isinstance(key, (str, int)):
        return str(key)
    return repr(key) if isinstance(key, bytes) else f"<{type(key).__name__}>{key!r}"


def _flatten(value: Any, prefix: str | None,
             out: list[tuple[str, tuple[int, ...], str]]) -> None:
    """Tensors of ``value`` by dotted path (``prefix`` None at the top: an entry named ``""``
    keeps its empty segment, as ckptdiff's container key ``""`` does)."""
    import torch

    if isinstance(value, torch.Tensor):
        dtype = TORCH_DTYPES.get(str(value.dtype).removeprefix("torch."), "other")
        out.append((prefix or "", tuple(value.shape), dtype))
    elif isinstance(value, dict):
        for key, item in value.items():
            _flatten(item, _key(key) if prefix is None else f"{prefix}.{_key(key)}", out)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _flatten(item, str(index) if prefix is None else f"{prefix}.{index}", out)


def _torch_load(path: str, mmap: bool, map_location: str | None) -> Reading:
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = torch.load(path, weights_only=True, mmap=mmap, map_location=map_location)
    out: list[tuple[str, tuple[int, ...], str]] = []
    _flatten(loaded, None, out)
    return Reading(True, tuple(sorted(out)))


def _load(path: str, mmap: bool) -> Reading:
    try:
        return _torch_load(path, mmap, None)
    except BaseException as exc:  # every refusal, of any type, is the loader's answer
        if not any(text in str(exc) for text in _NO_DEVICE):
            return Reading(False, reason=f"{type(exc).__name__}: {str(exc)[:200]}")
    try:
        return _torch_load(path, mmap, "cpu")
    except BaseException as exc:
        reason = f"{type(exc).__name__}: {str(exc)[:200]}"
        return Reading(False, reason=reason, needs_device=any(t in str(exc) for t in _NO_DEVICE))


def load_zip(path: str) -> Reading:
    """``torch.load(weights_only=True, mmap=True)``, retried on the CPU for a missing device."""
    return _load(path, True)


def load_legacy(path: str) -> Reading:
    """``torch.load(weights_only=True)`` (a legacy file cannot be mmapped)."""
    return _load(path, False)


def mutate_zip(seed: Seed, others: list[Seed], rng: random.Random) -> tuple[str, Data]:
    """A pickle edit or an archive edit, with another zip seed to hide or append."""
    assert isinstance(seed.data, bytes)
    other = rng.choice([s for s in others if s.family == "torch-zip" and s is not seed])
    assert isinstance(other.data, bytes)
    return torch_edits.mutate_torch_zip(seed.data, other.data, rng)


def mutate_legacy(seed: Seed, others: list[Seed], rng: random.Random) -> tuple[str, Data]:
    """An edit of one of the legacy file's pickles."""
    assert isinstance(seed.data, bytes)
    return torch_edits.mutate_legacy(seed.data, rng)


def _zip_seeds() -> list[Seed]:
    return [s for s in torch_seeds() if s.family == "torch-zip"]


def _legacy_seeds() -> list[Seed]:
    return [s for s in torch_seeds() if s.family == "torch-legacy"]


FAMILIES = [
    Family("torch-zip", _zip_seeds, mutate_zip, load_zip, imports=("torch",)),
    Family("torch-legacy", _legacy_seeds, mutate_legacy, load_legacy, imports=("torch",)),
]
