"""Why two keys pair up: the steps of an explanation, their wording, tier and confidence.

A :class:`Step` is one reusable reason (``strip prefix 'module.'``, ``rename 'gamma' → 'weight'``).
Steps come in kinds; the kind fixes how strong the evidence is (its *tier*): known wrappers and
framework conventions beat lexical renames learned from the data, which beat arbitrary renames.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

# Tiers: a higher tier wins any contest with a lower one.
KNOWN = 5
LEXICAL = 4
SHIFT = 3
ARBITRARY = 2
STRUCTURE = 1

# The order steps are listed in a rule's text.
_KIND_ORDER = ("wrapper_prefix", "prefix", "wrapper_segment", "segment", "framework", "synonym",
               "substitute", "vocabulary", "order", "weight_norm", "shift", "structure",
               "leftover")


class Step(NamedTuple):
    """One reason: the source has ``source`` where the target has ``target``."""

    kind: str
    source: str
    target: str

    def describe(self) -> str:
        """Human wording, e.g. ``strip prefix 'module.'``."""
        a, b = self.source, self.target
        if self.kind in ("wrapper_prefix", "prefix"):
            if not b:
                return f"strip prefix '{a}'"
            if not a:
                return f"add prefix '{b}'"
            return f"replace prefix '{a}' with '{b}'"
        if self.kind in ("wrapper_segment", "segment"):
            what = "wrapper segment" if self.kind == "wrapper_segment" else "segment"
            return f"drop {what} '{a}'" if a else f"insert {what} '{b}'"
        if self.kind == "framework":
            if a in ("/", "."):
                return f"path separator '{a}' → '{b}'"
            return f"framework name '{a}' → '{b}'"
        if self.kind == "weight_norm":
            return f"weight norm '{a}' → '{b}'"
        if self.kind == "shift":
            where = "top-level indices" if a == "N" else f"indices of '{a}'"
            return f"shift {where} by {b} (layers inserted or removed; aligned by shape)"
        if self.kind == "vocabulary":
            return f"rename '{a}' → '{b}' (the same words in ML naming, in every block)"
        if self.kind == "order":
            return f"pair numbered '{a}' with '{b}' by their place in the block"
        if self.kind == "structure":
            return f"pair {a} by order and shape"
        if self.kind == "leftover":
            return f"rename '{a}' → '{b}' (the one open pair of its shape there, named alike)"
        return f"rename '{a}' → '{b}'"


@dataclass(frozen=True)
class Transform:
    """Reorder a tensor's dimensions: ``axes`` as numpy ``transpose``/torch ``permute`` take it."""

    axes: tuple[int, ...]

    @property
    def name(self) -> str:
        """``transpose`` for a 2-D swap, else ``permute`` (the report's ``transform``)."""
        return "transpose" if self.axes == (1, 0) else "permute"

    def apply(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """The shape after the reorder."""
        return tuple(shape[axis] for axis in self.axes)

    def describe(self) -> str:
        """Human wording of the layout change."""
        if self.axes == (1, 0):
            return "transpose [in, out] ↔ [out, in]"
        layouts = {(2, 1, 0): "KIO ↔ OIK", (3, 2, 0, 1): "HWIO → OIHW",
                   (2, 3, 1, 0): "OIHW → HWIO", (4, 3, 0, 1, 2): "DHWIO → OIDHW",
                   (2, 3, 4, 1, 0): "OIDHW → DHWIO"}
        layout = layouts.get(self.axes, "reorder")
        return f"permute {layout} (axes {', '.join(str(a) for a in self.axes)})"


@lru_cache(maxsize=4096)
def merge_parts(source_parts: tuple[Step, ...], target_parts: tuple[Step, ...]
                ) -> tuple[Step, ...]:
    """Steps that turn the source key into the target key, from each side's canonical parts.

    A source part says "the source has ``source`` where the canonical form has ``target``"; a
    target part says the same of the target, so it is reversed. Identical parts on both sides
    cancel; wrapper prefixes of both sides merge into one replace.
    """
    source_list = list(source_parts)
    target_list = list(target_parts)
    for part in list(source_list):
        twin = next((p for p in target_list if (p.source, p.target) == (part.source, part.target)),
                    None)
        if twin is not None:
            source_list.remove(part)
            target_list.remove(twin)
    steps = source_list + [Step(p.kind, p.target, p.source) for p in target_list]
    prefixes = [s for s in steps if s.kind == "wrapper_prefix"]
    if len(prefixes) > 1:
        merged = Step("wrapper_prefix", "".join(s.source for s in prefixes),
                      "".join(s.target for s in prefixes))
        steps = [s for s in steps if s.kind != "wrapper_prefix"] + [merged]
    return ordered(steps)


def ordered(steps: Iterable[Step]) -> tuple[Step, ...]:
    """Steps deduplicated, in the order rule texts list them."""
    return _ordered(tuple(steps))


@lru_cache(maxsize=4096)
def _ordered(steps: tuple[Step, ...]) -> tuple[Step, ...]:
    unique = set(steps)
    return tuple(sorted(unique, key=lambda s: (_KIND_ORDER.index(s.kind), s)))


@lru_cache(maxsize=4096)
def describe(steps: tuple[Step, ...], transform: Transform | None) -> str:
    """The rule text of a suggestion: its steps, then its transform."""
    framework = [s for s in steps if s.kind == "framework"]
    parts = [s.describe() for s in steps if s.kind != "framework"]
    if framework:  # one phrase for the whole TF/Keras ↔ torch naming convention
        to_torch = any(s.source == "/" or s.target in ("weight", "bias", "running_mean",
                                                       "running_var") for s in framework)
        parts.insert(0, "TF/Keras names → torch names" if to_torch
                     else "torch names → TF/Keras names")
    if transform is not None:
        parts.append(transform.describe())
    return "; ".join(parts) if parts else "same key after normalization"


@lru_cache(maxsize=4096)
def known_confidence(steps: tuple[Step, ...]) -> float:
    """Confidence of an explanation made only of known conventions."""
    kinds = {s.kind for s in steps}
    if kinds & {"framework"}:
        return 0.95
    if kinds & {"synonym"}:
        return 0.97
    return 0.99


def learned_confidence(tier: int, support: int) -> float:
    """Confidence of a learned step with ``support`` keys behind it."""
    if tier >= KNOWN:
        return 0.99
    if tier == LEXICAL:
        return min(0.97, 0.86 + 0.02 * support)
    if tier == SHIFT:
        return 0.9
    if tier == ARBITRARY:
        return min(0.9, 0.7 + 0.02 * support)
    return 0.85
