"""Issue-3 benchmark: header-only inspection vs what a user would run instead.

Builds (once, cached in bench/_work/) a 1 GiB torch zip checkpoint (256 tensors of 1024×1024
float32), the same as safetensors, and a 100 MB torch checkpoint, then times whole processes
side by side in one run. Usage: python bench/bench_torch.py [--repeat N] [--baseline SRC]

``--baseline SRC`` also times ``python -m ckptdiff inspect big.pth --format json`` with another
tree's ``src`` folder first on PYTHONPATH (e.g. a ``git worktree`` of an earlier commit) beside
the same command on this tree, interleaved: how a change moved the fast lane.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

from common import CKPTDIFF, WORK, Measure, measure, report, verdict

TORCH_LISTING = ("import sys, torch; sd = torch.load(sys.argv[1], mmap=True, weights_only=True); "
                 "print([(k, tuple(v.shape)) for k, v in sd.items()])")
SAFE_LISTING = ("import sys; from safetensors import safe_open; f = safe_open(sys.argv[1], 'np'); "
                "print([(k, f.get_slice(k).get_shape()) for k in f.keys()])")


def build_fixtures() -> dict[str, str]:
    """Create the checkpoints if they are not there yet (in a child: see ``_build``)."""
    WORK.mkdir(exist_ok=True)
    paths = {"big.pth": WORK / "big.pth", "big.safetensors": WORK / "big.safetensors",
             "small.pth": WORK / "small.pth"}
    if not all(p.exists() for p in paths.values()):
        # A child builds them: a parent that held 1 GiB of tensors would hand that RSS to
        # every process it forks, and ru_maxrss would count it against them.
        subprocess.run([sys.executable, __file__, "--build"], check=True)
    return {name: str(path) for name, path in paths.items()}


def _build() -> None:
    import torch
    from safetensors.torch import save_file

    big = {f"layers.{i}.weight": torch.zeros(1024, 1024) for i in range(256)}
    torch.save(big, WORK / "big.pth")
    save_file(big, str(WORK / "big.safetensors"))
    torch.save(dict(list(big.items())[:25]), WORK / "small.pth")


def main() -> int:
    """Measure and print; exit status 1 when a goal is missed."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--baseline", metavar="SRC", type=Path,
                        help="another tree's src/ to time beside this one (python -m ckptdiff)")
    parser.add_argument("--build", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build:
        _build()
        return 0
    repeat = args.repeat
    files = build_fixtures()
    py = sys.executable
    rows: dict[str, Measure] = {}
    for label, argv in {
        "ckptdiff inspect big.pth --format json": [CKPTDIFF, "inspect", files["big.pth"],
                                                   "--format", "json"],
        "ckptdiff inspect big.pth (table)": [CKPTDIFF, "inspect", files["big.pth"]],
        "ckptdiff inspect small.pth --format json": [CKPTDIFF, "inspect", files["small.pth"],
                                                     "--format", "json"],
        "torch.load(mmap=True) big.pth + shapes": [py, "-c", TORCH_LISTING, files["big.pth"]],
        "ckptdiff inspect big.safetensors --format json": [
            CKPTDIFF, "inspect", files["big.safetensors"], "--format", "json"],
        "safe_open(big.safetensors) + shapes": [py, "-c", SAFE_LISTING, files["big.safetensors"]],
    }.items():
        rows[label] = measure(label, argv, repeat)
    print(f"median of {repeat} runs each, whole processes, one machine, one run:")
    report(list(rows.values()))
    r = list(rows.values())
    json_ratio = r[3].seconds / r[0].seconds
    table_ratio = r[3].seconds / r[1].seconds
    safe_ratio = r[4].seconds / r[5].seconds
    ok = all([
        verdict("torch zip, JSON", json_ratio >= 20, f"{json_ratio:.1f}x faster than torch.load "
                "(goal >= 20x)"),
        verdict("torch zip, table", table_ratio >= 10, f"{table_ratio:.1f}x faster (goal >= 10x)"),
        verdict("peak RSS", max(r[0].peak_rss_mb, r[2].peak_rss_mb) < 80,
                f"{r[2].peak_rss_mb:.1f} MB at 100 MB, {r[0].peak_rss_mb:.1f} MB at 1 GiB "
                "(goal < 80 MB whatever the size)"),
        verdict("safetensors", safe_ratio <= 2, f"ckptdiff takes {safe_ratio:.2f}x the time of "
                "safe_open (goal <= 2x)"),
    ])
    if args.baseline is not None:
        compare_baseline(args.baseline, files["big.pth"], repeat, r[3].seconds)
    return 0 if ok else 1


def compare_baseline(baseline: Path, checkpoint: str, repeat: int, torch_seconds: float) -> None:
    """``inspect --format json`` of ``checkpoint`` by ``baseline``'s tree and by this one,
    in alternating rounds (a slow phase of the machine hits both)."""
    here = Path(__file__).resolve().parent.parent / "src"
    argv = [sys.executable, "-m", "ckptdiff", "inspect", checkpoint, "--format", "json"]
    trees = {"baseline": str(baseline.resolve()), "this tree": str(here)}
    times: dict[str, list[float]] = {name: [] for name in trees}
    for _ in range(3):
        for name, src in trees.items():
            times[name].append(measure(name, argv, repeat, {"PYTHONPATH": src}).seconds)
    print(f"python -m ckptdiff inspect big.pth --format json, 3 alternating rounds of {repeat}:")
    for name, src in trees.items():
        median = statistics.median(times[name])
        print(f"  {name:<9} {src}: {median * 1000:7.1f} ms (rounds: "
              f"{', '.join(f'{t * 1000:.1f}' for t in times[name])}), "
              f"{torch_seconds / median:.1f}x faster than torch.load")


if __name__ == "__main__":
    raise SystemExit(main())
