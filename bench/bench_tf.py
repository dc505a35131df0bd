"""TensorFlow benchmark: inspecting a TF2 checkpoint vs asking TensorFlow to list it.

Builds (once, with tensorflow, cached in bench/_work/) a tf.train.Checkpoint of 400 variables of
256x256 float32 (100 MiB of data), then times whole processes side by side in one run:
``ckptdiff inspect PREFIX --format json`` vs ``tf.train.list_variables(PREFIX)``. Median of
several runs after a warm-up (children may write bytecode caches, as an installed package has);
peak RSS from wait4's rusage of each child.
Usage: python bench/bench_tf.py [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from common import CKPTDIFF, WORK, Measure, measure, report, verdict

VARIABLES, SIDE = 400, 256
BUILD = f"""
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import tensorflow as tf
model = tf.Module()
model.layers = [tf.Variable(tf.zeros([{SIDE}, {SIDE}]), name=f"w{{i}}") for i in range({VARIABLES})]
print(tf.train.Checkpoint(model=model).save(sys.argv[1]))
"""
TF_LISTING = ("import os, sys; os.environ['TF_CPP_MIN_LOG_LEVEL'] = '3'; import tensorflow as tf; "
              "print(tf.train.list_variables(sys.argv[1]))")


def build_checkpoint() -> str:
    """Create the checkpoint with TensorFlow unless it is cached; return its prefix."""
    folder = WORK / f"tf2_{VARIABLES}x{SIDE}"
    prefix = folder / "ckpt-1"
    if not prefix.with_name("ckpt-1.index").exists():
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-c", BUILD, str(folder / "ckpt")], check=True)
    return str(prefix)


def main() -> int:
    """Measure and print; exit status 1 when a goal is missed."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    repeat = parser.parse_args().repeat
    # Measure as installed: children may cache bytecode (a PYTHONDONTWRITEBYTECODE=1 shell would
    # otherwise make every ckptdiff run recompile its modules, ~100 ms); the warm-up run writes it.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    prefix = build_checkpoint()
    rows: list[Measure] = [
        measure("ckptdiff inspect PREFIX --format json",
                [CKPTDIFF, "inspect", prefix, "--format", "json"], repeat),
        measure("tf.train.list_variables(PREFIX)", [sys.executable, "-c", TF_LISTING, prefix],
                repeat),
    ]
    print(f"TF2 checkpoint, {VARIABLES} variables of {SIDE}x{SIDE} float32; "
          f"median of {repeat} runs each, whole processes, one machine, one run:")
    report(rows)
    ratio = rows[1].seconds / rows[0].seconds
    ok = all([
        verdict("speed", ratio >= 15, f"{ratio:.1f}x faster than tf.train.list_variables "
                "(goal >= 15x)"),
        verdict("peak RSS", rows[0].peak_rss_mb < 80,
                f"{rows[0].peak_rss_mb:.1f} MB for ckptdiff vs {rows[1].peak_rss_mb:.1f} MB for "
                "TensorFlow (goal < 80 MB)"),
    ])
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
