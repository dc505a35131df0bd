"""Whole-process timing and peak-RSS measurement shared by the benchmarks."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

WORK = Path(__file__).resolve().parent / "_work"
CKPTDIFF = str(Path(sys.executable).with_name("ckptdiff"))
# Children may cache bytecode, as an installed package does (the warm-up run writes it).
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


@dataclass(frozen=True)
class Measure:
    """Median wall time and the largest peak RSS over repeated runs of one command."""

    label: str
    seconds: float
    peak_rss_mb: float


def run_once(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one child process; fails loudly on a non-zero exit.

    ``env`` adds variables to the children's environment (e.g. PYTHONPATH for a baseline tree).
    """
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**CHILD_ENV, **(env or {})})
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1):
        err = proc.stderr.read().decode() if proc.stderr else ""
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(argv)}\n{err}")
    if proc.stderr:
        proc.stderr.close()
    return elapsed, usage.ru_maxrss / 1024  # ru_maxrss is KiB on Linux


def measure(label: str, argv: list[str], repeat: int,
            env: dict[str, str] | None = None) -> Measure:
    """Run ``argv`` ``repeat`` times (after one warm-up) and keep the median time."""
    run_once(argv, env)
    runs = [run_once(argv, env) for _ in range(repeat)]
    return Measure(label, statistics.median(r[0] for r in runs), max(r[1] for r in runs))


def report(rows: list[Measure]) -> None:
    """Print a fixed-width table of measures."""
    width = max(len(r.label) for r in rows)
    for row in rows:
        print(f"  {row.label:<{width}}  {row.seconds * 1000:9.1f} ms  {row.peak_rss_mb:7.1f} MB")


def verdict(name: str, ok: bool, detail: str) -> bool:
    """Print one goal line; returns ``ok``."""
    print(f"{'PASS' if ok else 'MISS'}  {name}: {detail}")
    return ok
