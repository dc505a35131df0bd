"""What the rename engine proposes: pairings (suggestions), regex rules and keys left unpaired.

Frozen records that the diff's Report carries and the renderers show; defined here, beside the
engine that makes them, so that the engine never imports the report it feeds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Suggestion:
    """A proposed pairing of an unexpected source key with a missing target key."""

    source_key: str
    target_key: str
    confidence: float
    rule: str
    transform: str | None = None
    # How to reorder the source tensor's dimensions (numpy ``transpose``/torch ``permute``
    # ``axes``): ``(1, 0)`` for ``transpose``, e.g. ``(3, 2, 0, 1)`` for ``permute`` HWIO → OIHW.
    axes: tuple[int, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON object of the report schema's suggestion."""
        return {
            "source_key": self.source_key,
            "target_key": self.target_key,
            "confidence": round(self.confidence, 4),
            "rule": self.rule,
            "transform": self.transform,
            "axes": None if self.axes is None else list(self.axes),
        }


@dataclass(frozen=True, slots=True)
class Rule:
    """A regex rename (``re.sub(pattern, replacement, key)``) and how many keys it fixes."""

    pattern: str
    replacement: str
    matches: int

    def to_dict(self) -> dict[str, Any]:
        """JSON object of the report schema's rule."""
        return {"pattern": self.pattern, "replacement": self.replacement, "matches": self.matches}


@dataclass(frozen=True, slots=True)
class Unpaired:
    """A key the rename engine deliberately left unpaired, and why (a tie, a shape, weak evidence).

    One of ``source_key``/``target_key`` is set; ``candidates`` lists the keys it could have been
    paired with. ``readings`` is set when the key was declined as *ambiguous*: each entry is one
    whole explanation the names and shapes allow (``c_fc_0 → gate_proj, c_fc_1 → up_proj``;
    ``blocked q,k,v``), so a user who knows which holds can state it. Empty when the key was
    declined for another reason (too little evidence, shapes that differ).
    """

    source_key: str | None
    target_key: str | None
    reason: str
    candidates: tuple[str, ...] = ()
    readings: tuple[str, ...] = ()
    # Aligned with ``readings``: the rules-file fragment that states each one, ``None`` where no
    # op can perform it (interleaved q/k/v) or the names leave its parts unplaced.
    statements: tuple[Statement | None, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON object of the report schema's ``unpaired`` entry."""
        return {"source_key": self.source_key, "target_key": self.target_key,
                "reason": self.reason, "candidates": list(self.candidates),
                "readings": list(self.readings),
                "statements": [None if s is None else s.to_dict() for s in self.statements]}


@dataclass(frozen=True, slots=True)
class ConversionOp:
    """One step of a conversion, applied to a list of tensors (JSON ``ops`` entry).

    ``concat``: join each run of ``parts`` consecutive tensors along ``dim`` (``per`` names the
    index the runs go over, for reading); ``stack``: stack the whole list along ``dim``;
    ``chunk``: split the one tensor along ``dim`` into ``parts`` pieces of ``sizes``;
    ``transpose``: swap ``dims`` of every tensor; ``merge_lora``: ``[W, A, B]`` becomes
    ``W + scale·B·A`` (``W + scale·(B·A)ᵀ`` with ``fan_in_fan_out``), in the dtype of ``W``.
    """

    op: str
    dim: int | None = None
    parts: int | None = None
    sizes: tuple[int, ...] | None = None
    per: str | None = None
    dims: tuple[int, int] | None = None
    scale: float | None = None
    fan_in_fan_out: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON object of the report schema's conversion op (unset fields left out)."""
        out: dict[str, Any] = {"op": self.op}
        if self.dim is not None:
            out["dim"] = self.dim
        if self.parts is not None:
            out["parts"] = self.parts
        if self.sizes is not None:
            out["sizes"] = list(self.sizes)
        if self.per is not None:
            out["per"] = self.per
        if self.dims is not None:
            out["dims"] = list(self.dims)
        if self.scale is not None:
            out["scale"] = self.scale
        if self.fan_in_fan_out is not None:
            out["fan_in_fan_out"] = self.fan_in_fan_out
        return out


@dataclass(frozen=True, slots=True)
class Conversion:
    """Several source tensors that make one target tensor, or one that makes several.

    ``ops`` turn the list of ``sources`` (in this order) into the list of ``targets`` (in this
    order): many-to-one ends with one tensor, one-to-many (``chunk``) with several.
    """

    sources: tuple[str, ...]
    targets: tuple[str, ...]
    ops: tuple[ConversionOp, ...]
    confidence: float
    rule: str

    @property
    def target(self) -> str | None:
        """The one target of a many-to-one conversion; ``None`` for a split."""
        return self.targets[0] if len(self.targets) == 1 else None

    def to_dict(self) -> dict[str, Any]:
        """JSON object of the report schema's ``conversions`` entry."""
        return {"sources": list(self.sources), "target": self.target,
                "targets": list(self.targets), "ops": [op.to_dict() for op in self.ops],
                "confidence": round(self.confidence, 4), "rule": self.rule}


@dataclass(frozen=True, slots=True)
class Statement:
    """What a user adds to a ``remap --rules`` file to state that one reading holds.

    ``rules`` rename keys (applied before the file's own rules: they name keys as stored);
    ``conversions`` make the target tensors of the source ones. Either may be empty.
    """

    rules: tuple[Rule, ...] = ()
    conversions: tuple[Conversion, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The rules file's own fragment: ``{"rules": [...]}`` and/or ``{"conversions": [...]}``."""
        out: dict[str, Any] = {}
        if self.rules:
            out["rules"] = [{"pattern": r.pattern, "replacement": r.replacement}
                            for r in self.rules]
        if self.conversions:
            out["conversions"] = [{"sources": list(c.sources), "targets": list(c.targets),
                                   "ops": [op.to_dict() for op in c.ops]}
                                  for c in self.conversions]
        return out
