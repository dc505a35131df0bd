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
import random
import shutil
from pathlib import Path

import pytest
from tests.hostile.mutate import Tally, check, mutants, run, targets

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


# Inputs the long mode found, each a bug fixed since: (target, seed, mutation).
FOUND = [
    # h5py names with lone surrogates reached the manifest, which could not be written as JSON.
    ("keras/tf2_weights.h5:tf2_weights.h5", 1, "wide@2176=4294967295"),
    # A zip64 field of all ones made zipfile compute a negative offset, and seek() raise.
    ("torch/ema.pth:ema.pth", 1, "wide@2243=18446744073709551615"),
    # A 'checkpoint' state file naming "/" made pathlib raise ValueError.
    ("tf/tf1_saver:tf1_saver/checkpoint", 1, "duplicate@23+2"),
    # The HDF5 library loops forever on these: stopped by the native sandbox's time limit.
    ("keras/custom.weights.h5:custom.weights.h5", 1, "duplicate@2162+11"),
    ("keras/model.keras:model.keras", 1, "scramble@20320+20"),
    # ... and allocates what a damaged size says (3.5 GB, 1 GB): stopped by its memory limit.
    ("keras/custom.weights.h5:custom.weights.h5", 2, "scramble@15458+16"),
    ("keras/legacy_model.h5:legacy_model.h5", 2, "flip8bits@19532"),
    # A zip "version needed" beyond zipfile's made it raise NotImplementedError.
    ("numpy/arrays.npz:arrays.npz", 0, "wide@2022=4294967295"),
    # A .npy header length of 0 asked for a negative read.
    ("numpy/weights.npy:weights.npy", 0, "wide@6=1"),
    # An ONNX external-data location with a NUL byte made pathlib raise ValueError.
    ("onnx/external/model.onnx:external/model.onnx", 1, "wide@3330=0"),
]


@pytest.mark.parametrize(("name", "seed", "mutation"), FOUND, ids=[f[0] for f in FOUND])
def test_inputs_the_fuzzer_found(name: str, seed: int, mutation: str, tmp_path: Path) -> None:
    target = next(t for t in TARGETS if t.name == name)
    work = tmp_path / "case"
    shutil.copytree(target.family, work, ignore=shutil.ignore_patterns("*.golden.json"))
    victim = work / target.victim
    rng = random.Random(f"{seed}:{target.name}")
    victim.write_bytes(next(d for m, d in mutants(victim.read_bytes(), 2000, rng)
                            if m == mutation))
    assert check(work / target.read_path, target.key) in ("manifest", "CorruptFileError")


def test_every_family_has_targets() -> None:
    families = {t.family.name for t in TARGETS}
    assert {"torch", "safetensors", "tf", "keras", "gguf", "numpy", "onnx", "torchscript",
            "torch_export"} <= families
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
