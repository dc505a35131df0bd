"""What one framework call would do with a checkpoint: the loaders' dry-run record.

Defined beside the loaders that produce it; the diff's Report carries it (``explain``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class LoadStatement:
    """What one framework call would do with the checkpoint (``diff --explain``): the call, its
    ``outcome`` (``raises``, ``loads``, ``partial``, ``casts``, ``moves``, ``not_applicable``),
    the message, and the keys the framework would name."""

    framework: str
    call: str
    outcome: str
    message: str
    keys: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON object of the report schema's ``explain`` entry."""
        return {"framework": self.framework, "call": self.call, "outcome": self.outcome,
                "message": self.message, "keys": list(self.keys)}
