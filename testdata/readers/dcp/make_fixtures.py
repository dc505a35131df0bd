"""Write the tiny torch.distributed.checkpoint fixtures of the conformance suite (needs torch).

Run from anywhere: ``python testdata/readers/dcp/make_fixtures.py``; then regenerate the goldens
(``python tests/regen_golden.py``) and review them. One process, no process group needed.

- ``model_optim/``: ``dcp.save({"model": ..., "optim": ..., "epoch": 3})`` of a Linear + BatchNorm
  model and its SGD-with-momentum state after one step.
- ``plain/``: ``dcp.save(model.state_dict())`` of a Linear in bfloat16.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch
import torch.distributed.checkpoint as dcp
from torch import nn

HERE = Path(__file__).resolve().parent


def main() -> None:
    """Write both checkpoints (relative ids: .metadata records the id it was saved under)."""
    os.chdir(HERE)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    for name in ("model_optim", "plain"):
        shutil.rmtree(name, ignore_errors=True)
    dcp.save({"model": model.state_dict(), "optim": optimizer.state_dict(), "epoch": 3},
             checkpoint_id="model_optim")
    dcp.save(nn.Linear(2, 2).to(torch.bfloat16).state_dict(), checkpoint_id="plain")


if __name__ == "__main__":
    main()
