"""Hostile-input benchmark: the whole hostile set plus a mutation corpus, read in one process.

Builds (in bench/_work/hostile, fresh each run) the hostile pickle corpus in every torch container
form, the hostile files (bombs, zip tricks, links out, LFS pointers …) and, in memory, the
mutation corpus of every reader's fixtures; then a measuring child process warms up on valid
fixtures, installs an audit hook, reads every input (``ckptdiff.readers.read`` and, for the
pickle corpus, ``unsafe_report``) and reports:

- inputs tried; code executions (audit events of a process, exec of code, socket, a real
  ``pickle.find_class``, an import, a file write, a read outside the corpus, or a fork that is
  not the HDF5 sandbox's; or the canary file changed): must be 0;
- crashes (anything but a manifest or a one-line CkptdiffError; for the pickle corpus, anything
  but UnsafeContentError naming exactly the planted globals): must be 0;
- p95 and max time per input (goal: p95 <= 2 s); peak RSS of the reader process and of the HDF5
  sandbox's children (goal: <= 256 MiB);
- then, in a second child (``hostile_differential.py``), the parser-differential harness for
  ``--differential`` inputs: differentials (ckptdiff reads other tensors than the framework
  loader, or accepts unsaid what it refuses; must be 0), executions and crashes on ckptdiff's
  side, the stricter/flagged counts, p95 per input and peak RSS.

Usage: python bench/bench_hostile.py [--mutations N] [--seed S] [--differential N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from common import WORK, verdict  # noqa: E402

GOAL_P95_SECONDS = 2.0
GOAL_RSS_MIB = 256


def build(folder: Path) -> dict[str, object]:
    """Write the hostile pickle corpus and the hostile files; return the measuring job."""
    from tests.hostile.corpus import write_corpus
    from tests.hostile.files import PICKLE_CASES, ZIP_CASES
    from tests.hostile.files_other import LFS_CASES, OTHER_CASES

    if folder.exists():
        shutil.rmtree(folder)
    corpus = write_corpus(folder / "corpus")
    files = []
    for case in PICKLE_CASES + ZIP_CASES + OTHER_CASES + LFS_CASES:
        target = folder / "files" / case.name
        target.mkdir(parents=True)
        files.append({"path": str(case.build(target)), "name": case.name,
                      "error": case.error.__name__ if case.error else None})
    unknown = folder / "unknown.bin"
    unknown.write_bytes(b"no known format")
    return {"root": str(folder), "canary": str(corpus.canary),
            "pickles": [{"path": str(f.path), "unsafe": sorted(f.hostile.unsafe)}
                        for f in corpus.files], "files": files,
            "warmup": [str(ROOT / "testdata" / "readers" / w) for w in (
                "torch/cnn_bn.pth", "torch/tied_views_legacy.pt", "safetensors/tiny.safetensors",
                "safetensors/sharded", "tf/tf2_keras/ckpt-1", "tf/savedmodel_module",
                "keras/model.keras", "keras/legacy_model.h5", "keras/model.weights.h5",
                "dcp/model_optim", "gguf/tiny_llama.gguf", "numpy/weights.npy",
                "numpy/arrays.npz", "onnx/legacy.onnx", "torchscript/scripted.pt",
                "torch_export/module.pt2")] + [str(unknown)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mutations", type=int, default=20_000, help="mutation inputs")
    parser.add_argument("--seed", type=int, default=2, help="mutation seed")
    parser.add_argument("--differential", type=int, default=5_000,
                        help="parser-differential inputs (0: none)")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--measure-differential", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        from hostile_measure import measure

        print(json.dumps(measure(json.loads(args.measure.read_text()))))
        return
    if args.measure_differential:
        from hostile_differential import measure_differential

        job = json.loads(args.measure_differential.read_text())
        print(json.dumps(measure_differential(job)))
        return
    folder = WORK / "hostile"
    job = build(folder)
    job.update(mutations=args.mutations, seed=args.seed)
    (folder / "job.json").write_text(json.dumps(job))
    stats = _child("--measure", folder / "job.json")
    differential = None
    if args.differential:
        (folder / "differential.json").write_text(json.dumps(
            {"inputs": args.differential, "seed": args.seed, "warmup": job["warmup"]}))
        differential = _child("--measure-differential", folder / "differential.json")
    report(stats, differential)


def _child(flag: str, job: Path) -> dict[str, object]:
    env = dict(os.environ, PYTHONPATH=f"{ROOT / 'src'}{os.pathsep}{ROOT}",
               CKPTDIFF_NATIVE_TIMEOUT="5")
    child = subprocess.run([sys.executable, __file__, flag, str(job)], env=env,
                           capture_output=True, text=True)
    if child.returncode != 0:
        raise SystemExit(f"measuring child failed:\n{child.stderr[-4000:]}")
    result: dict[str, object] = json.loads(child.stdout.strip().splitlines()[-1])
    return result


def report_differential(stats: dict[str, object]) -> list[bool]:
    """Print the differential harness's figures; return its verdicts."""
    outcomes = stats["outcomes"]
    assert isinstance(outcomes, dict)
    print(f"differential inputs:     {stats['inputs']:,} (torch zip/legacy, safetensors, DCP, "
          "Keras HDF5, tf.train; each read by ckptdiff and by its framework's loader)")
    print(f"  differentials:         {stats['differential_count']} (ckptdiff stricter "
          f"{outcomes.get('stricter', 0):,}, flagged as refused by torch "
          f"{outcomes.get('flagged', 0):,}, needs a device here absent "
          f"{outcomes.get('needs-device', 0):,}, refused by the loader only on reading tensor "
          f"bytes {outcomes.get('loader-only', 0):,}, agree {outcomes.get('agree', 0):,})")
    print(f"  code executions:       {stats['executions']}; crashes {stats['crash_count']}")
    ms = {name: float(str(stats[name])) * 1000 for name in ("p50", "p95", "max")}
    rss, baseline = float(str(stats["rss_mib"])), float(str(stats["baseline_rss_mib"]))
    print(f"  p95 time per input:    {ms['p95']:,.1f} ms (median {ms['p50']:,.1f} ms, max "
          f"{ms['max']:,.1f} ms); peak RSS {rss:,.1f} MiB, of which {rss - baseline:,.1f} MiB "
          f"after warm-up (torch, imported to mutate, is the {baseline:,.1f} MiB before)")
    for name in ("differentials", "crashes", "events"):
        for line in list(stats[name]):  # type: ignore[call-overload]
            print(f"  {line}")
    return [verdict("no differentials", stats["differential_count"] == 0,
                    str(stats["differential_count"])),
            verdict("no code executed (differential)", stats["executions"] == 0,
                    str(stats["executions"])),
            verdict("no crashes (differential)", stats["crash_count"] == 0,
                    str(stats["crash_count"]))]


def report(stats: dict[str, object], differential: dict[str, object] | None) -> None:
    """Print the figures and one line per goal."""
    counts = stats["counts"]
    assert isinstance(counts, dict)
    print(f"inputs tried:            {stats['inputs']:,} (hostile pickles {counts['pickles']:,} "
          f"in 5 container forms, hostile files {counts['files']:,}, mutations "
          f"{counts['mutations']:,})")
    print(f"code executions:         {stats['executions']} (audit events "
          f"{len(stats['events'])}, canary changed: {stats['canary_changed']}; forks "
          f"{stats['forks']} = HDF5 sandbox runs {stats['sandbox_runs']}, kills "
          f"{stats['kills']} = sandbox timeouts {stats['timeouts']})")
    print(f"crashes:                 {len(stats['crashes'])}")
    print(f"p95 time per input:      {stats['p95'] * 1000:,.1f} ms (median "
          f"{stats['p50'] * 1000:,.1f} ms, max {stats['max'] * 1000:,.1f} ms)")
    print(f"peak RSS:                {stats['rss_mib']:,.1f} MiB reader process, "
          f"{stats['children_rss_mib']:,.1f} MiB largest HDF5 child (its address space is capped)")
    print(f"outcomes:                {json.dumps(stats['outcomes'], sort_keys=True)}")
    print("slowest inputs:          " + "; ".join(stats["slowest"]))  # type: ignore[arg-type]
    for line in list(stats["crashes"])[:20] + list(stats["events"])[:20]:  # type: ignore[call-overload]
        print(f"  {line}")
    ok = [verdict("no code executed", stats["executions"] == 0, str(stats["executions"])),
          verdict("no crashes", not stats["crashes"], str(len(stats["crashes"]))),
          verdict("p95 <= 2 s", float(stats["p95"]) <= GOAL_P95_SECONDS,
                  f"{stats['p95']:.3f} s"),
          verdict("peak RSS <= 256 MiB", max(float(stats["rss_mib"]),
                                             float(stats["children_rss_mib"])) <= GOAL_RSS_MIB,
                  f"{stats['rss_mib']:.1f} / {stats['children_rss_mib']:.1f} MiB")]
    if differential is not None:
        ok += report_differential(differential)
    if not all(ok):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
