"""What one loader decides about a checkpoint and a target: the records the loaders produce.

A loader's ``Judgement`` says whether it fills every tensor the target expects (its ``Verdict``)
and, for each key the two sides do not share, whether it accepts the difference (an ``info``
finding) or fails on it (an ``error``), with a note where the failure is harmless. The diff turns
these into findings (``diffing.match``); the Report carries the verdicts. Defined here, beside
the loaders, so that loaders never import the diff.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class Verdict:
    """One loader's answer: does ``call`` fill every tensor the target expects?

    ``name`` is what ``diff --loader`` takes; ``loader`` the call as the contract spells it
    (``torch.nn.Module.load_state_dict(strict=True)``); ``keys`` the keys the loader names.
    """

    name: str
    loader: str
    framework: str
    loads: bool
    reason: str
    keys: tuple[str, ...] = ()
    default: bool = False
    # The loader refuses the file itself before any key is compared (torch.load's safe
    # unpickler): no policy on keys can accept that.
    refuses_file: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON object of the report schema's ``verdicts`` entry."""
        return {"loader": self.loader, "framework": self.framework, "loads": self.loads,
                "default": self.default, "reason": self.reason, "keys": list(self.keys),
                "name": self.name}

    def as_default(self) -> Verdict:
        """This verdict marked as the one ``compatible`` follows."""
        return replace(self, default=True)


@dataclass(frozen=True)
class KeyCall:
    """What the loader does with one key only one side has: ``accepted`` keys become ``info``
    findings, the others ``error``; ``note`` says why (and, for a harmless failure, how to load);
    ``tied_to`` names the key sharing the storage."""

    accepted: bool
    note: str | None = None
    tied_to: str | None = None


@dataclass(frozen=True)
class Judgement:
    """A loader's verdict and its call on each key it treats specially (by key; a missing key is
    a target key, an unexpected one a source key, so one mapping holds both).
    ``decides_keys``: the loader's calls set the severity of every missing and unexpected key
    (torch, transformers, Keras ``load_weights``, TF ``restore``); otherwise the key diff's own
    rules stand (the dry-run verdicts listed beside key parity). ``extra_unexpected``: keys
    both sides have that the loader still reports unexpected (``safetensors.torch.load_model``
    given both names of a tied weight)."""

    verdict: Verdict
    calls: Mapping[str, KeyCall] = field(default_factory=dict)
    decides_keys: bool = False
    extra_unexpected: tuple[str, ...] = ()

    def call_for(self, key: str) -> KeyCall | None:
        """The loader's call on ``key``, or None where it fails on it without a note."""
        return self.calls.get(key)


def count_phrase(count: int, noun: str) -> str:
    """``1 missing key`` / ``3 missing keys``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
