"""Write the tiny torch fixtures of the reader conformance suite (needs torch).

Run from anywhere: ``python testdata/readers/torch/make_fixtures.py``; then regenerate the goldens
with ``python tests/regen_golden.py`` and review them. Files stay a few KB: tiny layers only.

- ``cnn_bn.pth``: an ``nn.Sequential`` CNN with BatchNorm, its ``state_dict()`` (zip format).
- ``lightning.ckpt``: a Lightning-style checkpoint: ``state_dict`` + Adam ``optimizer_states``
  after one step + ``epoch``/``global_step`` (zip format).
- ``tied_views_legacy.pt``: tied weights, views of one storage, saved ``nn.Parameter`` objects
  (legacy format, ``_use_new_zipfile_serialization=False``).
- ``dtypes.pt``: one small tensor per interesting dtype, a scalar and an empty tensor (zip).
- ``ema.pth``: ``{"model": ..., "ema": ...}``, read with ``key="ema"`` in ``cases.json``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

HERE = Path(__file__).resolve().parent


def cnn_bn() -> dict[str, torch.Tensor]:
    """A tiny CNN with BatchNorm, after one training-mode forward (running stats updated)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(),
                          nn.Linear(2, 2))
    model(torch.randn(2, 1, 3, 3))
    return model.state_dict()


def lightning() -> dict[str, object]:
    """What Lightning's ``Trainer.save_checkpoint`` writes, minus classes outside weights_only."""
    torch.manual_seed(0)
    model = nn.Linear(2, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    model(torch.randn(3, 2)).sum().backward()
    optimizer.step()
    state = {f"model.{k}": v for k, v in model.state_dict().items()}
    return {"epoch": 4, "global_step": 120, "pytorch-lightning_version": "2.4.0",
            "state_dict": state, "loops": {}, "callbacks": {},
            "optimizer_states": [optimizer.state_dict()], "lr_schedulers": []}


def tied_views() -> dict[str, torch.Tensor]:
    """Tied weights (one tensor under two keys), views of one storage, and parameters."""
    torch.manual_seed(0)
    shared = torch.randn(3, 2)
    base = torch.arange(12, dtype=torch.int32).reshape(3, 4)
    return {"emb.weight": shared, "head.weight": shared, "base": base, "base_t": base.t(),
            "row": base[1], "cols": base[:, 1::2],
            "scale": nn.Parameter(torch.ones(2)),
            "frozen": nn.Parameter(torch.zeros(2), requires_grad=False)}


def dtypes() -> dict[str, torch.Tensor]:
    """One tensor per dtype worth checking, plus a scalar and an empty tensor."""
    out = {name: torch.zeros(2, dtype=getattr(torch, name))
           for name in ("bfloat16", "float16", "float8_e4m3fn", "float8_e5m2", "uint16",
                        "uint32", "bool", "complex64", "int8", "int64")}
    out["scalar"] = torch.tensor(1.5, dtype=torch.float64)
    out["empty"] = torch.zeros(0, 3)
    return out


def ema() -> dict[str, dict[str, torch.Tensor]]:
    """A model and its EMA copy (the reader prefers ``model`` unless ``key`` says otherwise)."""
    torch.manual_seed(0)
    model = nn.Linear(2, 1)
    return {"model": model.state_dict(),
            "ema": {k: v.clone() for k, v in model.state_dict().items()}}


def main() -> None:
    """Write every fixture next to this script."""
    written = {"cnn_bn.pth": cnn_bn(), "lightning.ckpt": lightning(), "dtypes.pt": dtypes(),
               "ema.pth": ema()}
    for name, obj in written.items():
        torch.save(obj, HERE / name)
    torch.save(tied_views(), HERE / "tied_views_legacy.pt", _use_new_zipfile_serialization=False)
    for name in [*written, "tied_views_legacy.pt"]:
        print(f"wrote {name} ({(HERE / name).stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
