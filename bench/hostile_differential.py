"""The differential side of bench_hostile.py: the parser-differential harness (tests/differential)
for N inputs, ckptdiff's reading of each one under an audit hook.

Runs in its own process (``bench_hostile.py --measure-differential JOB``). The hook is switched
on only while ckptdiff reads an input: the rest of the time the harness writes inputs and talks
to the framework loader's worker process (a pipe, unpickling its answers), which is the
harness's doing, not a reader's. The peak RSS is this process's (ckptdiff's side); the loader
runs in a worker with a 3 GiB address-space cap. This process imports torch too (the harness
mutates checkpoints with torch's own archive writer), so the figure reported beside the peak is
its growth after warm-up: what reading the inputs cost.
"""

from __future__ import annotations

import contextlib
import importlib
import math
import resource
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any


def measure_differential(job: dict[str, Any]) -> dict[str, Any]:
    """Run ``job["inputs"]`` differential inputs with seed ``job["seed"]``; return the figures."""
    from tests.differential import harness
    from tests.differential.families import write_input
    from tests.differential.sides import Loader, Reading, ckptdiff_reading
    from tests.hostile import audit_child

    from ckptdiff.errors import CkptdiffError
    from ckptdiff.readers import read

    seeds = harness.all_seeds()
    events: list[str] = []
    watching = [False]
    forks = [0, 0]  # forks, kills: the HDF5 sandbox's own are told from a payload's by count
    sandbox = audit_child._count_sandbox_runs()  # runs, timeouts

    def watched(path: str) -> Reading:
        watching[0] = True
        try:
            return ckptdiff_reading(path)
        finally:
            watching[0] = False

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if watching[0]:
            audit_child.record(audit_child._describe(event, args), forks, events)

    loader = Loader()
    with tempfile.TemporaryDirectory() as scratch:
        audit_child.ROOTS[0] = scratch
        # zipfile decodes a member name without the UTF-8 flag by cp437, imported on first use
        importlib.import_module("encodings.cp437")
        for seed in seeds:  # warm up: the modules each reader imports lazily, before the hook
            ckptdiff_reading(str(write_input(Path(scratch), seed, seed.data, "warm")))
        for warm in job["warmup"]:  # every format, and a file of none (loads the plugins)
            with contextlib.suppress(CkptdiffError):
                read(warm)
        baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        sandbox[:] = [0, 0]  # the warm-ups' sandbox runs were not watched
        sys.addaudithook(hook)
        harness.ckptdiff_reading = watched  # type: ignore[assignment]
        tally = harness.run(seeds, math.ceil(job["inputs"] / len(seeds)), job["seed"],
                            Path(scratch), loader)
    loader.close()
    seconds = sorted(tally.seconds)
    return {
        "inputs": tally.inputs, "outcomes": dict(tally.outcomes),
        "differentials": tally.differentials[:20], "differential_count": len(tally.differentials),
        "crashes": tally.crashes[:20], "crash_count": len(tally.crashes),
        "events": events[:20],
        "executions": audit_child.unexplained(events, forks, sandbox),
        "forks": forks[0], "sandbox_runs": sandbox[0],
        "stricter": tally.stricter.most_common(8),
        "p50": statistics.median(seconds), "p95": seconds[int(0.95 * (len(seconds) - 1))],
        "max": seconds[-1], "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "baseline_rss_mib": baseline,
    }
