"""Mutation fuzzing of every reader's committed fixtures: each damaged input reads to a manifest
that can be written out, or to a one-line CkptdiffError; anything else is a crash and fails.

Quick mode (always): ~5,400 inputs, seed 0, under a minute. Long mode, only when asked for
(``pytest -m slow``, or ``CKPTDIFF_FUZZ_INPUTS`` set): ``CKPTDIFF_FUZZ_INPUTS`` inputs (default
100,000) with seed ``CKPTDIFF_FUZZ_SEED`` (default 1). A crash is
reported with the target, the mutation and the seed, which reproduce it (tests/hostile/mutate.py).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
from tests.hostile.mutate import Tally, run, targets

QUICK_INPUTS = 5_400
TARGETS = targets()


def fuzz(total: int, seed: int, scratch: Path) -> Tally:
    per_target = math.ceil(total / len(TARGETS))
    tally = Tally()
    for target in TARGETS:
        result = run(target, per_target, seed, scratch)
        tally.inputs += result.inputs
        tally.manifests += result.manifests
        tally.crashes.extend(result.crashes)
        tally.seconds.extend(result.seconds)
        for name, count in result.errors.items():
            tally.errors[name] = tally.errors.get(name, 0) + count
    return tally


def check_tally(tally: Tally, total: int) -> None:
    assert not tally.crashes, "\n".join(tally.crashes[:50])
    assert tally.inputs >= total
    assert tally.manifests > 0 and tally.errors.get("CorruptFileError", 0) > tally.inputs // 4
    assert max(tally.seconds) < 11


def test_every_family_has_targets() -> None:
    families = {t.family.name for t in TARGETS}
    assert {"torch", "safetensors", "tf", "keras"} <= families
    assert len(TARGETS) >= 20


@pytest.fixture(autouse=True)
def _short_native_time_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    # An input that makes the HDF5 library loop costs this much (see native_sandbox).
    monkeypatch.setenv("CKPTDIFF_NATIVE_TIMEOUT", "5")


def test_quick_mutation_fuzzing(tmp_path: Path) -> None:
    tally = fuzz(QUICK_INPUTS, int(os.environ.get("CKPTDIFF_FUZZ_SEED", "0")), tmp_path)
    check_tally(tally, 5_000)


@pytest.mark.slow
def test_long_mutation_fuzzing(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    chosen = "slow" in str(request.config.getoption("markexpr", ""))
    if not chosen and "CKPTDIFF_FUZZ_INPUTS" not in os.environ:
        pytest.skip("long mode: select it with -m slow, or set CKPTDIFF_FUZZ_INPUTS")
    total = int(os.environ.get("CKPTDIFF_FUZZ_INPUTS", "100000"))
    tally = fuzz(total, int(os.environ.get("CKPTDIFF_FUZZ_SEED", "1")), tmp_path)
    check_tally(tally, total)
