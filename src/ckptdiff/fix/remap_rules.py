"""Applying a rules file: its renames, transforms and conversions, each checked against the
checkpoint so that no entry is silently ignored.

A transform applies to the tensor that ends up under its key: a renamed (or kept) stored tensor,
or a conversion's target after the conversion's ops. Refused, each in one line naming the file
and the entry: a transform of a key no tensor ends up under, one that does not fit that tensor's
dimensions, a conversion of a key the checkpoint lacks, and a conversion making a key that the
rules also rename a stored tensor to (which of the two was meant, the file does not say).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ckptdiff.errors import UsageError
from ckptdiff.fix.convert import conversion_outputs, without_parts
from ckptdiff.fix.remap_write import Output
from ckptdiff.fix.rules_file import RulesFile
from ckptdiff.manifest import Manifest

Moves = dict[str, tuple[str, tuple[int, ...] | None]]


def rules_moves(plan: RulesFile, path: Path, stored: Manifest, source: Path) -> Moves:
    """Each stored key's new name and transform; a ``UsageError`` for an entry that cannot apply.

    A key a conversion makes gets no transform here: it applies to the converted tensor.
    """
    made = {key: c.targets[0] for c in plan.conversions for key in c.targets}
    consumed = {key for c in plan.conversions for key in c.sources}
    for c in plan.conversions:
        absent = [key for key in c.sources if key not in stored.by_key]
        if absent:
            raise UsageError(f"{path}: conversion making {c.targets[0]!r} names {absent[0]!r}, "
                             f"which {source} does not hold")
    renamed = {t.key: plan.rename(t.key) for t in stored.tensors}
    for old, new in renamed.items():
        if new != old and new in made and old not in consumed:
            raise UsageError(f"{path}: conversion making {made[new]!r}: the rules also rename "
                             f"{old!r} to {new!r}; state one of them")
    kept = {new for old, new in renamed.items() if old not in consumed}
    for key in plan.transforms:
        if key not in kept and key not in made:
            raise UsageError(f"{path}: transform of {key!r}: no tensor ends up under that key "
                             f"(no rule renames a key of {source} to it, no conversion makes it)")
    moves: Moves = {}
    for info in stored.tensors:
        new = renamed[info.key]
        axes = None if new in made else plan.transforms.get(new)
        if axes is not None and info.key not in consumed and len(axes) != len(info.shape):
            raise UsageError(f"{path}: transform of {new!r}: {list(axes)} does not fit "
                             f"{info.key} {list(info.shape)}")
        moves[info.key] = (new, axes)
    return moves


def with_rules_conversions(plan: RulesFile, path: Path, stored: Manifest, outputs: list[Output],
                           dropped: list[str]) -> list[Output]:
    """``outputs`` with the file's conversions performed (and transformed where it says)."""
    try:
        converted = conversion_outputs(plan.conversions, stored)
    except UsageError as exc:
        raise UsageError(f"{path}: {exc}") from None
    return without_parts(outputs, [_transformed(out, plan, path) for out in converted], dropped)


def _transformed(out: Output, plan: RulesFile, path: Path) -> Output:
    axes = plan.transforms.get(out.key)
    if axes is None:
        return out
    if len(axes) != len(out.shape):
        raise UsageError(f"{path}: transform of {out.key!r}: {list(axes)} does not fit the "
                         f"converted tensor {list(out.shape)}")
    return replace(out, shape=tuple(out.shape[a] for a in axes), axes=axes)
