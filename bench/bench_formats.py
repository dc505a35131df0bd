"""Issue-17 benchmark: a 1 GiB file of each new format listed by ``ckptdiff inspect --format json``
against ``python -c pass`` (goal: under 20x), and beside what a user would run instead.

Builds (once, cached in bench/_work/): ``big.gguf`` (sparse: a Llama-2-sized tokenizer of 32,000
tokens with scores and types, 256 tensors of 1024x1024 float32 described, the data section a
hole), ``big.npy`` (one 1 GiB float32 array, sparse) and ``big.npz`` (256 arrays of 1024x1024
float32 written by ``numpy.savez``: real bytes, since zip members cannot be holes).
Usage: python bench/bench_formats.py [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from common import WORK, measure, report, verdict

SRC = str(Path(__file__).resolve().parent.parent / "src")
GGUF_LISTING = ("import sys, gguf; r = gguf.GGUFReader(sys.argv[1]); "
                "print([(t.name, t.shape.tolist()) for t in r.tensors])")
NPZ_LISTING = ("import sys, numpy; f = numpy.load(sys.argv[1]); "
               "print([(k, f[k].shape) for k in f.files])")
NPY_LISTING = "import sys, numpy; print(numpy.load(sys.argv[1], mmap_mode='r').shape)"
TENSORS, SIDE = 256, 1024


def build_fixtures() -> dict[str, Path]:
    """Create the files if they are not there yet."""
    WORK.mkdir(exist_ok=True)
    paths = {name: WORK / name for name in ("big.gguf", "big.npy", "big.npz")}
    if not paths["big.gguf"].exists():
        _gguf(paths["big.gguf"])
    if not paths["big.npy"].exists():
        import numpy as np

        array = np.lib.format.open_memmap(paths["big.npy"], mode="w+", dtype=np.float32,
                                          shape=(TENSORS * SIDE, SIDE))
        del array  # never written: the file stays a hole
    if not paths["big.npz"].exists():
        import numpy as np

        block = np.zeros((SIDE, SIDE), np.float32)
        np.savez(paths["big.npz"], **{f"layers.{i}.weight": block for i in range(TENSORS)})
    return paths


def _gguf(path: Path) -> None:
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(TENSORS)
    writer.add_context_length(4096)
    writer.add_tokenizer_model("llama")
    writer.add_token_list([f"<token {i}>" for i in range(32_000)])
    writer.add_token_scores([0.0] * 32_000)
    writer.add_token_types([1] * 32_000)
    for i in range(TENSORS):
        writer.add_tensor_info(f"blk.{i}.ffn_up.weight", (SIDE, SIDE), np.dtype(np.float32),
                               SIDE * SIDE * 4)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    writer.close()
    header = path.stat().st_size
    os.truncate(path, -(-header // 32) * 32 + TENSORS * SIDE * SIDE * 4)


def main() -> None:
    """Time each listing, print the table and the goal lines."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    paths = build_fixtures()
    env = {"PYTHONPATH": SRC}
    baseline = measure("python -c pass", [sys.executable, "-c", "pass"], args.repeat)
    rows = [baseline]
    ratios = {}
    for name, listing in (("big.gguf", GGUF_LISTING), ("big.npy", NPY_LISTING),
                          ("big.npz", NPZ_LISTING)):
        ours = measure(f"ckptdiff inspect {name} --format json",
                       [sys.executable, "-m", "ckptdiff", "inspect", str(paths[name]),
                        "--format", "json"], args.repeat, env)
        theirs = measure(f"  their own listing of {name}",
                         [sys.executable, "-c", listing, str(paths[name])], args.repeat)
        rows += [ours, theirs]
        ratios[name] = ours.seconds / baseline.seconds
    report(rows)
    for name, ratio in ratios.items():
        verdict(f"{name} listed in < 20x python -c pass", ratio < 20, f"{ratio:.1f}x")


if __name__ == "__main__":
    main()
