"""The measuring side of bench_hostile.py: reads every hostile input under an audit hook.

Runs in its own process (``bench_hostile.py --measure JOB``), so its peak RSS is the readers'.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import resource
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any


def measure(job: dict[str, Any]) -> dict[str, Any]:
    """Warm up, install the audit hook, read everything in ``job``; return the figures."""
    from tests.hostile import audit_child
    from tests.hostile.mutate import check, mutants, targets

    from ckptdiff.errors import CkptdiffError, UnsafeContentError
    from ckptdiff.readers import read
    from ckptdiff.readers.pickle.unsafe_report import unsafe_report

    root = Path(job["root"])
    audit_child.ROOTS[0] = str(root)
    all_targets = targets()  # reads testdata/*/cases.json: before the hook
    for path in job["warmup"]:
        with contextlib.suppress(CkptdiffError):
            read(path)
        unsafe_report(path)
    canary = Path(job["canary"])
    before = (canary.read_bytes(), canary.stat().st_mtime_ns)
    events: list[str] = []
    quiet = [False]  # the benchmark's own writes (mutants) are not the readers'
    forks = [0, 0]  # forks, kills
    sandbox = audit_child._count_sandbox_runs()  # runs, timeouts

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if quiet[0]:
            return
        audit_child.record(audit_child._describe(event, args), forks, events)

    sys.addaudithook(hook)
    seconds: list[float] = []
    slowest: list[tuple[float, str]] = []
    crashes: list[str] = []
    outcomes: dict[str, int] = {}

    def timed(name: str, action: Any) -> str:
        start = time.perf_counter()
        try:
            result = action()
        except Exception as exc:  # a crash
            result = "crash"
            crashes.append(f"{name}: {type(exc).__name__}: {exc}"[:300])
        seconds.append(time.perf_counter() - start)
        slowest.append((seconds[-1], name))
        slowest.sort(reverse=True)
        del slowest[5:]
        outcomes[result] = outcomes.get(result, 0) + 1
        return str(result)

    for item in job["pickles"]:
        def hostile(item: dict[str, Any] = item) -> str:
            try:
                read(item["path"])
            except UnsafeContentError as exc:
                if sorted(exc.globals) != item["unsafe"]:
                    raise AssertionError(f"named {exc.globals}, planted {item['unsafe']}") from None
                if unsafe_report(item["path"]).unsafe_globals != item["unsafe"]:
                    raise AssertionError("the unsafe report disagrees") from None
                return "UnsafeContentError"
            raise AssertionError("not refused as unsafe")
        timed(item["path"], hostile)
    for item in job["files"]:
        timed(item["name"], lambda item=item: check(Path(item["path"]), None))
    per_target = math.ceil(job["mutations"] / len(all_targets))
    scratch = root / "mutations"
    mutation_inputs = 0
    for number, target in enumerate(all_targets):
        quiet[0] = True
        work = scratch / str(number)
        shutil.copytree(target.family, work, symlinks=True,
                        ignore=shutil.ignore_patterns("*.golden.json", "*.py"))
        victim = work / target.victim
        rng = random.Random(f"{job['seed']}:{target.name}")
        for description, data in mutants(victim.read_bytes(), per_target, rng):
            quiet[0] = True
            victim.write_bytes(data)
            quiet[0] = False
            timed(f"{target.name} {description} (seed {job['seed']})",
                  lambda path=work / target.read_path, key=target.key: check(path, key))
            mutation_inputs += 1
    quiet[0] = True
    changed = (canary.read_bytes(), canary.stat().st_mtime_ns) != before
    seconds.sort()
    return {
        "inputs": len(seconds),
        "counts": {"pickles": len(job["pickles"]), "files": len(job["files"]),
                   "mutations": mutation_inputs},
        "executions": audit_child.unexplained(events, forks, sandbox) + int(changed),
        "events": events[:50], "canary_changed": changed, "forks": forks[0],
        "sandbox_runs": sandbox[0], "kills": forks[1], "timeouts": sandbox[1],
        "crashes": crashes, "outcomes": outcomes,
        "p50": statistics.median(seconds), "p95": seconds[int(0.95 * (len(seconds) - 1))],
        "max": seconds[-1], "slowest": [f"{t * 1000:,.0f} ms {n}" for t, n in slowest],
        "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "children_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "pid": os.getpid(),
    }
