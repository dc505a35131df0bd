"""Issue-7 benchmark: diff a 7B-parameter sharded checkpoint against a live model in seconds.

Builds (once, cached in bench/_work/llama7b/) a Llama-7B-shaped sharded safetensors checkpoint
(transformers ``LlamaConfig``: hidden 4096, intermediate 11008, 32 layers, 32 heads, vocab 32000;
bfloat16, 13.5 GB in two shards as the Hub's Llama-2-7b) as SPARSE files: real headers and index,
holes for the data, so it costs a few KB of disk. Then times, whole processes, one run:

- ``ckptdiff diff DIR bench_model.py:build`` (the model built on the meta device), goal < 5 s
  and < 1 GB peak RSS;
- the by-hand equivalent: the same model on the meta device, every shard listed with
  ``safetensors.safe_open`` (shapes and dtypes, no data), keys and shapes compared;
- ``transformers`` ``from_pretrained(DIR, device_map="meta")`` where it runs offline (it needs
  ``accelerate``);
- the floor: building the model alone (importing torch and transformers is most of the time), and
  ``ckptdiff diff`` against a snapshot of the model (no torch at all).

Usage: python bench/bench_7b.py [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import struct
import subprocess
import sys

from common import CHILD_ENV, CKPTDIFF, WORK, Measure, measure, report, verdict

DIR = WORK / "llama7b"
MODEL_FILE = DIR / "bench_model.py"
SNAPSHOT = WORK / "llama7b.manifest.json"
SHARD_BYTES = 10_000_000_000  # the Hub's 10 GB shards: two for 7B in bfloat16
MODEL_SOURCE = '''"""A Llama-7B-shaped model on the meta device (no memory for weights)."""


def build():
    """LlamaForCausalLM with 7B sizes, bfloat16, every tensor on the meta device."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                         num_attention_heads=32, num_key_value_heads=32, vocab_size=32000,
                         tie_word_embeddings=False)
    with torch.device("meta"):
        return LlamaForCausalLM(config).to(torch.bfloat16)
'''
BY_HAND = '''import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from safetensors import safe_open
from bench_model import build
expected = {k: tuple(v.shape) for k, v in build().state_dict().items()}
folder = Path(sys.argv[1])
index = json.loads((folder / "model.safetensors.index.json").read_text())
found = {}
for shard in sorted(set(index["weight_map"].values())):
    with safe_open(str(folder / shard), "pt") as f:
        for key in f.keys():
            found[key] = tuple(f.get_slice(key).get_shape())
bad = [k for k in expected.keys() | found.keys() if expected.get(k) != found.get(k)]
print(len(expected), len(found), len(bad))
'''
FROM_PRETRAINED = '''import sys
from transformers import AutoModelForCausalLM
try:
    model = AutoModelForCausalLM.from_pretrained(sys.argv[1], device_map="meta", dtype="bfloat16")
except Exception as exc:  # e.g. device_map needs accelerate: exit 3, which measure() refuses
    print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
    sys.exit(3)
print(sum(p.numel() for p in model.parameters()))
'''
BUILD_ONLY = "import sys; sys.path.insert(0, sys.argv[1]); from bench_model import build; build()"


def build_fixtures() -> None:
    """Write the sparse checkpoint and the model file, in a child (see ``_build``)."""
    if not (DIR / "model.safetensors.index.json").exists():
        subprocess.run([sys.executable, __file__, "--build"], check=True, env=CHILD_ENV)
    if not SNAPSHOT.exists():
        subprocess.run([CKPTDIFF, "snapshot", f"{MODEL_FILE}:build", "-o", str(SNAPSHOT)],
                       check=True, env=CHILD_ENV)


def _build() -> None:
    DIR.mkdir(parents=True, exist_ok=True)
    MODEL_FILE.write_text(MODEL_SOURCE)
    sys.path.insert(0, str(DIR))
    from bench_model import build  # type: ignore[import-not-found]

    tensors = [(k, tuple(v.shape)) for k, v in build().state_dict().items()]
    shards: list[list[tuple[str, tuple[int, ...]]]] = [[]]
    size = 0
    for key, shape in tensors:
        nbytes = 2 * _numel(shape)
        if size and size + nbytes > SHARD_BYTES:
            shards.append([])
            size = 0
        shards[-1].append((key, shape))
        size += nbytes
    weight_map: dict[str, str] = {}
    total = 0
    for number, shard in enumerate(shards, 1):
        name = f"model-{number:05d}-of-{len(shards):05d}.safetensors"
        total += _write_sparse(DIR / name, shard)
        weight_map.update({key: name for key, _ in shard})
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (DIR / "config.json").write_text(json.dumps({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096,
        "intermediate_size": 11008, "num_hidden_layers": 32, "num_attention_heads": 32,
        "num_key_value_heads": 32, "vocab_size": 32000, "torch_dtype": "bfloat16",
        "tie_word_embeddings": False}))
    (DIR / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))


def _numel(shape: tuple[int, ...]) -> int:
    count = 1
    for dim in shape:
        count *= dim
    return count


def _write_sparse(path: object, shard: list[tuple[str, tuple[int, ...]]]) -> int:
    """A safetensors header for ``shard`` (bfloat16), then a hole as long as the data."""
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for key, shape in shard:
        nbytes = 2 * _numel(shape)
        header[key] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [offset,
                                                                                offset + nbytes]}
        offset += nbytes
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with open(str(path), "wb") as handle:
        handle.write(struct.pack("<Q", len(raw)) + raw)
        handle.truncate(8 + len(raw) + offset)
    return offset


def main() -> int:
    """Measure and print; exit status 1 when a goal is missed."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--build", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build:
        _build()
        return 0
    build_fixtures()
    py = sys.executable
    spec = f"{MODEL_FILE}:build"
    commands = {
        "ckptdiff diff DIR bench_model.py:build": [CKPTDIFF, "diff", str(DIR), spec],
        "ckptdiff diff ... --format json": [CKPTDIFF, "diff", str(DIR), spec, "--format", "json"],
        "meta model + safe_open listing (by hand)": [py, "-c", BY_HAND, str(DIR)],
        "bench_model.build() alone (the floor)": [py, "-c", BUILD_ONLY, str(DIR)],
        "ckptdiff diff DIR model snapshot (no torch)": [CKPTDIFF, "diff", str(DIR),
                                                        str(SNAPSHOT)],
    }
    rows: list[Measure] = [measure(label, argv, args.repeat) for label, argv in commands.items()]
    try:
        rows.append(measure("from_pretrained(device_map='meta')",
                            [py, "-c", FROM_PRETRAINED, str(DIR)], args.repeat))
    except SystemExit as exc:  # it may refuse sparse shards or need the network
        print(f"from_pretrained(device_map='meta') did not run: "
              f"{str(exc).strip().splitlines()[-1]}")
    print(f"median of {args.repeat} runs each, whole processes, one machine, one run:")
    report(rows)
    ours = rows[0]
    lines = [verdict("7B diff time", ours.seconds < 5, f"{ours.seconds:.2f} s (goal < 5 s)"),
             verdict("7B diff peak RSS", ours.peak_rss_mb < 1024,
                     f"{ours.peak_rss_mb:.0f} MB (goal < 1 GB)")]
    floor, snapshot = rows[3], rows[4]
    print(f"ckptdiff's own share: {ours.seconds - floor.seconds:.2f} s over building the model "
          f"(import torch + transformers, {floor.seconds:.2f} s); against a snapshot it takes "
          f"{snapshot.seconds:.2f} s and {snapshot.peak_rss_mb:.0f} MB")
    for other in (rows[2], *rows[5:]):
        print(f"ratio: {other.label} takes {other.seconds / ours.seconds:.2f}x the time of "
              f"ckptdiff diff and {other.peak_rss_mb / ours.peak_rss_mb:.2f}x its peak RSS")
    return 0 if all(lines) else 1


if __name__ == "__main__":
    raise SystemExit(main())
