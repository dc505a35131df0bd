"""What every framework's dry run starts from: the model tensors of both sides, paired by key."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ckptdiff.loaders.optimizer_slots import WEIGHT_KINDS
from ckptdiff.manifest import Manifest

MAX_LISTED = 10  # keys spelled out in a message; the statement's ``keys`` holds them all


@dataclass(frozen=True)
class KeySets:
    """Keys of one side's tensors against the other's, in the target's (then source's) order."""

    missing: list[str]
    unexpected: list[str]
    matched: list[str]
    shape: list[str]
    dtype: list[str]
    device: list[str]

    @classmethod
    def of(cls, source: Manifest, target: Manifest, kinds: Sequence[str] = WEIGHT_KINDS
           ) -> KeySets:
        """Pair the tensors of ``kinds`` (model weights by default) by exact key."""
        stored = {t.key: t for t in source.tensors if t.kind in kinds}
        expected = {t.key: t for t in target.tensors if t.kind in kinds}
        both = [k for k in expected if k in stored]
        return cls(
            missing=[k for k in expected if k not in stored],
            unexpected=[k for k in stored if k not in expected],
            matched=[k for k in both if stored[k].shape == expected[k].shape],
            shape=[k for k in both if stored[k].shape != expected[k].shape],
            dtype=[k for k in both if stored[k].dtype != expected[k].dtype],
            device=[k for k in both if stored[k].device and expected[k].device
                    and stored[k].device != expected[k].device],
        )


def quoted(keys: Sequence[str], limit: int = MAX_LISTED) -> str:
    """``"a", "b"`` as torch lists keys, cut after ``limit`` with a count of the rest."""
    text = ", ".join(f'"{key}"' for key in keys[:limit])
    return text + (f", … ({len(keys) - limit} more)" if len(keys) > limit else "")


def listed(items: Sequence[str], limit: int = MAX_LISTED) -> str:
    """``a, b, c`` cut after ``limit`` with a count of the rest."""
    text = ", ".join(items[:limit])
    return text + (f", … ({len(items) - limit} more)" if len(items) > limit else "")


def shape_text(shape: Sequence[int]) -> str:
    """``(4, 3)`` as Python prints a shape tuple; ``(3,)`` for one dimension."""
    return str(tuple(int(d) for d in shape))
