"""The differential harness: every seed, mutated, read by ckptdiff and by the framework loader.

Input ``i`` of seed ``s`` under run seed ``r`` is drawn from ``random.Random(f"{r}:{s}:{i}")``,
so ``(r, s, i)`` reproduces it exactly (:func:`make_input`). Outcomes:

- ``differential`` (a bug): both accept but the tensors differ, or ckptdiff accepts, without
  saying the loader refuses it, a file the loader refuses;
- ``stricter``: ckptdiff refuses what the loader accepts (allowed; its reasons are kept);
- ``flagged``: ckptdiff reads it but warns that ``torch.load(weights_only=True)`` refuses it,
  and the loader does refuse it;
- ``agree``: both accept the same tensors, or both refuse;
- ``needs-device``: ckptdiff accepts a file the loader refuses only for a device this machine
  lacks (CUDA, mps, a privateuseone backend), even with ``map_location="cpu"``;
- ``loader-only``: ckptdiff accepts a file the loader refuses only on reading a tensor's bytes
  (a tf.train CRC-32C over them), which a reader of headers cannot check;
- ``crash``: ckptdiff raised something other than a ``CkptdiffError`` (a bug).
"""

from __future__ import annotations

import random
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tests.differential.families import Data, Seed, registry, write_input
from tests.differential.sides import Loader, Reading, ckptdiff_reading


@dataclass
class Tally:
    """What a run found."""

    inputs: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    differentials: list[str] = field(default_factory=list)
    crashes: list[str] = field(default_factory=list)
    stricter: Counter[str] = field(default_factory=Counter)
    seconds: list[float] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        """Fold ``other`` into this tally."""
        self.inputs += other.inputs
        self.outcomes.update(other.outcomes)
        self.differentials += other.differentials
        self.crashes += other.crashes
        self.stricter.update(other.stricter)
        self.seconds += other.seconds


def all_seeds(families: list[str] | None = None) -> list[Seed]:
    """Every seed of ``families`` (default: every registered family), in registry order."""
    chosen = registry()
    return [seed for name, family in chosen.items() if families is None or name in families
            for seed in family.seeds()]


def make_input(seed: Seed, others: list[Seed], run_seed: int, index: int) -> tuple[str, Data]:
    """Input ``index`` of ``seed``: the mutation's description and the mutated data."""
    rng = random.Random(f"{run_seed}:{seed.name}:{index}")
    return registry()[seed.family].mutate(seed, others, rng)


def in_container(reading: Reading, container: str | None,
                 optimizers: tuple[str, ...] = ()) -> tuple[object, ...]:
    """The loader's tensors inside ckptdiff's chosen container, keyed as ckptdiff keys them,
    and those of the optimizer containers beside it (ckptdiff keys their slots by full path)."""
    if len(reading.tensors) == 1 and reading.tensors[0][0] == "":
        return (("tensor", *reading.tensors[0][1:]),)  # a bare tensor: ckptdiff's key for it
    if container is None:
        return reading.tensors
    prefix = f"{container}."
    beside = tuple(f"{name}." for name in optimizers)
    return tuple(sorted((key.removeprefix(prefix) if key.startswith(prefix) else key, shape,
                         dtype) for key, shape, dtype in reading.tensors
                        if key.startswith(prefix) or key.startswith(beside)))


def classify(ours: Reading, theirs: Reading) -> str:
    """The outcome of one input (see the module docstring)."""
    if ours.accepted and theirs.accepted:
        same = ours.tensors == in_container(theirs, ours.container, ours.optimizers)
        return "agree" if same else "differential"
    if ours.accepted:
        if theirs.needs_device:
            return "needs-device"
        if theirs.loader_only:
            return "loader-only"
        return "flagged" if ours.flagged else "differential"
    return "stricter" if theirs.accepted else "agree"


def check_input(path: Path, seed: Seed, loader: Loader, tally: Tally, label: str) -> str:
    """Read ``path`` both ways, record the outcome in ``tally`` and return it."""
    start = time.perf_counter()
    try:
        ours = ckptdiff_reading(str(path))
    except Exception:
        tally.crashes.append(f"{label}: {traceback.format_exc(limit=-3)}")
        return "crash"
    finally:
        tally.seconds.append(time.perf_counter() - start)
    theirs = loader.read(str(path), seed.family)
    outcome = classify(ours, theirs)
    tally.inputs += 1
    tally.outcomes[outcome] += 1
    if outcome == "differential":
        tally.differentials.append(f"{label}\n  ckptdiff: {ours}\n  loader:   {theirs}")
    elif outcome == "stricter":
        tally.stricter[ours.reason.split(": ", 2)[-1][:90]] += 1
    return outcome


def run(seeds: list[Seed], per_seed: int, run_seed: int, scratch: Path,
        loader: Loader) -> Tally:
    """``per_seed`` inputs of every seed (the unmutated seed first)."""
    tally = Tally()
    everything = all_seeds()
    for seed in seeds:
        path = write_input(scratch, seed, seed.data)
        check_input(path, seed, loader, tally, f"{seed.name} unmutated")
        for index in range(per_seed - 1):
            what, data = make_input(seed, everything, run_seed, index)
            path = write_input(scratch, seed, data)
            check_input(path, seed, loader, tally, f"({run_seed}, {seed.name!r}, {index}) {what}")
    return tally
