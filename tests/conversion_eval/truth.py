"""The truth of a case, by values: which saved tensors became which loaded tensor.

Every weight was drawn at random, so a float's bit pattern names the one loaded tensor it went
to. A loaded tensor whose values are exactly one saved tensor's (as is, or transposed) is a
rename; one made of several saved tensors is a many-to-one conversion; several loaded tensors cut
from one saved tensor are a split. Keys equal on both sides with equal values need nothing.
Loaded tensors that share their values with another loaded key (tied weights) are left out; a
saved tensor none of whose values is seen once (a zero buffer) has no truth but its values.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Truth:
    """What a careful tool should find in one case."""

    renames: dict[str, str] = field(default_factory=dict)  # saved key -> loaded key
    joins: dict[str, frozenset[str]] = field(default_factory=dict)  # loaded key -> saved parts
    splits: dict[str, frozenset[str]] = field(default_factory=dict)  # saved key -> loaded parts
    unexplained: list[str] = field(default_factory=list)  # loaded keys no saved value fills
    # Saved keys without a value seen once (zero buffers, constant norms): their values decide.
    constant: set[str] = field(default_factory=set)


def _bits(tensor: Any) -> Any:
    import torch

    flat = tensor.detach().contiguous().reshape(-1)
    return flat.view(torch.int32) if flat.dtype == torch.float32 else flat.to(torch.float64)


def derive(saved: dict[str, Any], loaded: dict[str, Any]) -> Truth:
    """Truth of ``saved`` (the checkpoint) against ``loaded`` (``from_pretrained``'s tensors)."""
    first: dict[tuple[tuple[int, ...], bytes], str] = {}
    tied: set[str] = set()
    for key, tensor in loaded.items():
        signature = (tuple(tensor.shape), _bits(tensor).numpy().tobytes())
        if first.setdefault(signature, key) != key:
            tied.add(key)
    # float32 draws repeat now and then (24-bit mantissas): only a value seen once names a home.
    counts: Counter[int] = Counter()
    for key, tensor in loaded.items():
        if key not in tied:
            counts.update(_bits(tensor).tolist())
    owner = {value: key for key, tensor in loaded.items() if key not in tied
             for value in _bits(tensor).tolist() if counts[value] == 1}
    truth = Truth()
    parts: dict[str, set[str]] = defaultdict(set)
    homes: dict[str, set[str]] = {}
    for key, tensor in saved.items():
        homes[key] = {owner[v] for v in _bits(tensor).tolist() if v in owner}
        for home in homes[key]:
            parts[home].add(key)
    for key, home in homes.items():
        if len(home) > 1:
            truth.splits[key] = frozenset(home)
            continue
        if not home:
            truth.constant.add(key)
        if len(home) != 1:
            continue
        (target,) = home
        if len(parts[target]) > 1:
            continue
        if target != key or not _same(saved[key], loaded[target]):
            truth.renames[key] = target
    for target, members in parts.items():
        if len(members) > 1:
            truth.joins[target] = frozenset(members)
    truth.unexplained = sorted(set(loaded) - set(parts) - tied)
    return truth


def _same(a: Any, b: Any) -> bool:
    return tuple(a.shape) == tuple(b.shape) and bool((a == b).all())
