"""Write the tiny safetensors fixtures of the reader conformance suite (needs torch, safetensors).

Run from anywhere: ``.venv/bin/python testdata/readers/safetensors/make_fixtures.py``; then
``.venv/bin/python tests/regen_golden.py`` and review the golden diffs. Values are fixed
(``arange``), so the files are reproducible except for the order of ``__metadata__`` entries,
which the library writes from a hash map (the reader sorts them).

- ``tiny.safetensors``: vocabulary dtypes, a scalar, an empty tensor, buffers, one dtype outside
  the vocabulary (``F8_E8M0`` → ``other``) and ``__metadata__``.
- ``pytorch_model.bin``: a safetensors file under a torch-style name (sniffed by content).
- ``single_dir/``: a folder holding one ``model.safetensors`` and no index.
- ``sharded/``: two shards and a ``model.safetensors.index.json`` in the layout transformers
  writes (``metadata.total_size`` = bytes of tensor data).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

HERE = Path(__file__).resolve().parent


def _tiny() -> dict[str, torch.Tensor]:
    return {
        "encoder.weight": torch.arange(12, dtype=torch.float32).reshape(4, 3),
        "encoder.bias": torch.arange(4, dtype=torch.bfloat16),
        "norm.running_mean": torch.zeros(4),
        "norm.num_batches_tracked": torch.tensor(7, dtype=torch.int64),
        "head.empty": torch.zeros(0, 3, dtype=torch.float16),
        "mask": torch.tensor([[True, False], [False, True]]),
        "scale": torch.ones(2, dtype=torch.float8_e8m0fnu),
    }


def _sharded() -> list[dict[str, torch.Tensor]]:
    return [
        {
            "embed.weight": torch.arange(10, dtype=torch.float32).reshape(5, 2),
            "layers.0.weight": torch.arange(4, dtype=torch.float16).reshape(2, 2),
        },
        {
            "layers.0.bias": torch.arange(2, dtype=torch.float16),
            "head.weight": torch.arange(6, dtype=torch.int8).reshape(3, 2),
        },
    ]


def main() -> None:
    """Write every fixture next to this script."""
    save_file(_tiny(), str(HERE / "tiny.safetensors"), metadata={"format": "pt", "note": "tiny"})
    save_file({"linear.weight": torch.arange(6, dtype=torch.float32).reshape(2, 3),
               "linear.bias": torch.arange(2, dtype=torch.float32)},
              str(HERE / "pytorch_model.bin"), metadata={"format": "pt"})
    (HERE / "single_dir").mkdir(exist_ok=True)
    save_file({"weight": torch.arange(3, dtype=torch.float64)},
              str(HERE / "single_dir" / "model.safetensors"))

    sharded = HERE / "sharded"
    sharded.mkdir(exist_ok=True)
    shards = _sharded()
    weight_map: dict[str, str] = {}
    total_size = 0
    for number, tensors in enumerate(shards, start=1):
        name = f"model-{number:05d}-of-{len(shards):05d}.safetensors"
        save_file(tensors, str(sharded / name), metadata={"format": "pt"})
        for key, tensor in tensors.items():
            weight_map[key] = name
            total_size += tensor.numel() * tensor.element_size()
    index = {"metadata": {"total_size": total_size}, "weight_map": dict(sorted(weight_map.items()))}
    (sharded / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")


if __name__ == "__main__":
    main()
