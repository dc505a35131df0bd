"""``trainable`` findings: tensors trained at save time that the target freezes, or the reverse.

Evidence at save time, strongest first: the format's own ``trainable`` flag (TF2 checkpoints,
SavedModels, Keras configs, pickled ``nn.Parameter``), then optimizer state (a variable with slots
was being trained). The target says ``requires_grad`` (torch) or ``trainable`` (Keras). Keys
without evidence on both sides are not judged.

Findings are warnings, one per key. Their note summarises the module: the shortest key prefix
whose judged tensors all changed the same way (``encoder.* frozen in the target: 96 tensors …``),
so renderers fold a frozen encoder into one row.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from ckptdiff.diffing.report import Finding, TensorSide
from ckptdiff.loaders.optimizer_slots import WEIGHT_KINDS, trained_variables
from ckptdiff.manifest import Manifest


@dataclass(frozen=True)
class _Change:
    now_trainable: bool
    evidence: str


def trainable_findings(source: Manifest, target: Manifest) -> list[Finding]:
    """One warning per key whose trainability differs between save time and the target."""
    slots: dict[str, list[str]] | None = None  # built when first needed
    judged: list[str] = []
    changes: dict[str, _Change] = {}
    by_key = source.by_key
    for info in target.tensors:
        if info.trainable is None:  # (first: most targets record no trainability)
            continue
        stored = by_key.get(info.key)
        if stored is None or stored.kind not in WEIGHT_KINDS:
            continue
        if stored.trainable is None and slots is None:
            slots = trained_variables(source, target)
        if stored.trainable is not None:
            was, evidence = stored.trainable, f"the checkpoint records trainable={stored.trainable}"
        elif slots is not None and info.key in slots:
            was = True
            evidence = f"the checkpoint has optimizer state: {', '.join(slots[info.key])}"
        else:
            continue
        judged.append(info.key)
        if was != info.trainable:
            changes[info.key] = _Change(info.trainable, evidence)
    notes = _module_notes(changes, judged)
    return [Finding("trainable", key, "warning", TensorSide.of(source.by_key[key]),
                    TensorSide.of(target.by_key[key]), notes[key]) for key in changes]


def _separator(key: str) -> str:
    return "/" if "/" in key and "." not in key.split("/")[0] else "."


def _prefixes(key: str) -> list[str]:
    """``""``, ``encoder``, ``encoder.0``, … up to the key itself."""
    sep = _separator(key)
    parts = key.split(sep)
    return [sep.join(parts[:depth]) for depth in range(len(parts) + 1)]


def _module_notes(changes: dict[str, _Change], judged: list[str]) -> dict[str, str]:
    totals: Counter[str] = Counter()
    same: Counter[tuple[str, bool]] = Counter()
    for key in judged:
        change = changes.get(key)
        for prefix in _prefixes(key):
            totals[prefix] += 1
            if change is not None:
                same[(prefix, change.now_trainable)] += 1
    notes: dict[str, str] = {}
    for key, change in changes.items():
        prefix = next(p for p in _prefixes(key)
                      if totals[p] == same[(p, change.now_trainable)])
        notes[key] = _note(prefix, key, same[(prefix, change.now_trainable)], change)
    return notes


def _note(prefix: str, key: str, count: int, change: _Change) -> str:
    why = change.evidence
    if prefix == key:
        if change.now_trainable:
            return f"trainable in the target but frozen at save time ({why}): training updates it"
        return (f"frozen in the target but trained at save time ({why}): fine-tuning leaves it "
                "unchanged")
    scope = f"{prefix}{_separator(key)}*" if prefix else "every judged tensor"
    tensors = "1 tensor" if count == 1 else f"{count} tensors"
    if change.now_trainable:
        return (f"{scope} trainable in the target: {tensors} frozen at save time ({why}) "
                "will now be trained")
    return (f"{scope} frozen in the target: {tensors} trained at save time ({why}) get no "
            "gradient; fine-tuning leaves them unchanged")
