"""DeepSeek-V3-shaped MoE benchmark: the hub layout diffed against the fused v5 layout.

The hub checkpoint stores every expert's ``gate_proj``/``up_proj``/``down_proj`` (61 layers, the
first 3 dense, 58 MoE with 256 experts and a shared expert: ~45,000 tensors); transformers 5.x
models hold them fused, ``mlp.experts.gate_up_proj`` ``[E, 2I, H]`` and ``mlp.experts.down_proj``
``[E, H, I]``. Both are written as snapshots and ``ckptdiff diff --format json`` runs on them in
a fresh process, as CI would; the goal is every fused tensor explained by a conversion in under
3 s. Shapes are DeepSeek-V3's (hidden 7168, expert intermediate 2048): snapshots hold headers
only, so no weight byte exists.
Usage: python bench/bench_deepseek.py [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from bench_rename import reference_seconds
from common import CHILD_ENV, CKPTDIFF, WORK, measure, report, verdict

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from ckptdiff.manifest import Manifest, TensorInfo  # noqa: E402

LAYERS, DENSE, EXPERTS = 61, 3, 256
HIDDEN, DENSE_INTERMEDIATE, EXPERT_INTERMEDIATE = 7168, 18432, 2048
VOCAB, Q_RANK, KV_RANK, HEADS, ROPE, NOPE, V_HEAD = 129280, 1536, 512, 128, 64, 128, 128
GOAL_SECONDS = 3.0
Shape = tuple[int, ...]


def attention(prefix: str) -> list[tuple[str, Shape]]:
    """Multi-head latent attention and the two norms of one layer (same in both layouts)."""
    return [(f"{prefix}.self_attn.q_a_proj.weight", (Q_RANK, HIDDEN)),
            (f"{prefix}.self_attn.q_a_layernorm.weight", (Q_RANK,)),
            (f"{prefix}.self_attn.q_b_proj.weight", (HEADS * (NOPE + ROPE), Q_RANK)),
            (f"{prefix}.self_attn.kv_a_proj_with_mqa.weight", (KV_RANK + ROPE, HIDDEN)),
            (f"{prefix}.self_attn.kv_a_layernorm.weight", (KV_RANK,)),
            (f"{prefix}.self_attn.kv_b_proj.weight", (HEADS * (NOPE + V_HEAD), KV_RANK)),
            (f"{prefix}.self_attn.o_proj.weight", (HIDDEN, HEADS * V_HEAD)),
            (f"{prefix}.input_layernorm.weight", (HIDDEN,)),
            (f"{prefix}.post_attention_layernorm.weight", (HIDDEN,))]


def mlp(prefix: str, intermediate: int) -> list[tuple[str, Shape]]:
    """A SwiGLU MLP's three projections."""
    return [(f"{prefix}.gate_proj.weight", (intermediate, HIDDEN)),
            (f"{prefix}.up_proj.weight", (intermediate, HIDDEN)),
            (f"{prefix}.down_proj.weight", (HIDDEN, intermediate))]


def layout(fused: bool) -> list[tuple[str, Shape]]:
    """Every tensor of the hub layout (``fused=False``) or of the v5 model's."""
    found = [("model.embed_tokens.weight", (VOCAB, HIDDEN))]
    for layer in range(LAYERS):
        prefix = f"model.layers.{layer}"
        found += attention(prefix)
        if layer < DENSE:
            found += mlp(f"{prefix}.mlp", DENSE_INTERMEDIATE)
            continue
        found += [(f"{prefix}.mlp.gate.weight", (EXPERTS, HIDDEN)),
                  (f"{prefix}.mlp.gate.e_score_correction_bias", (EXPERTS,))]
        found += mlp(f"{prefix}.mlp.shared_experts", EXPERT_INTERMEDIATE)
        if fused:
            found += [(f"{prefix}.mlp.experts.gate_up_proj",
                       (EXPERTS, 2 * EXPERT_INTERMEDIATE, HIDDEN)),
                      (f"{prefix}.mlp.experts.down_proj", (EXPERTS, HIDDEN, EXPERT_INTERMEDIATE))]
        else:
            for expert in range(EXPERTS):
                found += mlp(f"{prefix}.mlp.experts.{expert}", EXPERT_INTERMEDIATE)
    return found + [("model.norm.weight", (HIDDEN,)), ("lm_head.weight", (VOCAB, HIDDEN))]


def snapshot(name: str, fused: bool) -> Path:
    """Write one layout as a manifest snapshot (bf16, as the hub stores it)."""
    tensors = tuple(TensorInfo(key, shape, "bfloat16") for key, shape in layout(fused))
    path = WORK / f"{name}.manifest.json"
    path.write_text(Manifest(name, "safetensors", tensors).to_json())
    return path


def explained(hub: Path, fused: Path) -> tuple[int, int, int]:
    """(fused targets, targets a conversion explains, hub tensors) from one JSON diff."""
    child = subprocess.run([CKPTDIFF, "diff", str(hub), str(fused), "--format", "json"],
                           capture_output=True, text=True, env=CHILD_ENV, check=False)
    document = json.loads(child.stdout)
    targets = {f["key"] for f in document["findings"] if f["kind"] == "missing"}
    covered = {c["target"] for c in document["conversions"]} & targets
    return len(targets), len(covered), int(document["source"]["tensors"])


def main() -> int:
    """Measure and print; exit status 1 when a goal is missed."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    WORK.mkdir(exist_ok=True)
    hub, fused = snapshot("deepseek_hub", False), snapshot("deepseek_fused", True)
    total, covered, stored = explained(hub, fused)
    print(f"DeepSeek-V3-shaped hub layout ({stored:,} tensors) vs the fused v5 layout "
          f"({os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; reference workload "
          f"{reference_seconds() * 1000:.0f} ms):")
    row = measure("ckptdiff diff --format json (hub vs fused snapshots)",
                  [CKPTDIFF, "diff", str(hub), str(fused), "--format", "json"], args.repeat)
    report([row])
    print(f"  reference workload after: {reference_seconds() * 1000:.0f} ms")
    ok = verdict("every fused tensor explained", covered == total, f"{covered} of {total}")
    ok &= verdict(f"whole process under {GOAL_SECONDS} s", row.seconds < GOAL_SECONDS,
                  f"{row.seconds:.2f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
