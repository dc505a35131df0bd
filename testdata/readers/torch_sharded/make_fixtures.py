"""Write the tiny sharded-torch fixture of the reader conformance suite (needs torch).

Run from anywhere: ``python testdata/readers/torch_sharded/make_fixtures.py``; then regenerate the
goldens (``python tests/regen_golden.py``) and review them.

- ``model/``: what ``save_pretrained(..., safe_serialization=False)`` writes for a model larger
  than its shard size: ``pytorch_model.bin.index.json`` and two ``torch.save`` shards (the second
  in the legacy format, as older transformers releases could leave them).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

HERE = Path(__file__).resolve().parent


def main() -> None:
    """Split a tiny Linear + LayerNorm state dict over two shards and write the index."""
    torch.manual_seed(0)
    state = nn.Sequential(nn.Linear(3, 2), nn.LayerNorm(2)).state_dict()
    folder = HERE / "model"
    folder.mkdir(exist_ok=True)
    names = ["pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin"]
    parts = [{k: v for k, v in state.items() if k.startswith("0.")},
             {k: v for k, v in state.items() if k.startswith("1.")}]
    torch.save(parts[0], folder / names[0])
    torch.save(parts[1], folder / names[1], _use_new_zipfile_serialization=False)
    weight_map = {key: name for name, part in zip(names, parts, strict=True) for key in part}
    total = sum(v.numel() * v.element_size() for v in state.values())
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (folder / "pytorch_model.bin.index.json").write_text(json.dumps(index, indent=2) + "\n")


if __name__ == "__main__":
    main()
