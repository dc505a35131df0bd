"""Write the tiny TorchScript fixtures of the reader conformance suite (needs torch).

Run from anywhere: ``python testdata/readers/torchscript/make_fixtures.py``; then regenerate the
goldens with ``python tests/regen_golden.py`` and review them. Files stay a few KB.

- ``scripted.pt``: ``torch.jit.script`` of a Conv/BatchNorm/Linear model with a persistent and a
  non-persistent buffer (a scripted module's ``state_dict()`` keeps both).
- ``tree.pt``: Sequential, ModuleList, a tied embedding/head weight, a frozen parameter, a Linear
  without bias, a plain tensor attribute (not in ``state_dict()``), list and dict attributes.
- ``no_tensors.pt``: a module without tensors (torch writes its ``data.pkl`` first).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

HERE = Path(__file__).resolve().parent


class Scripted(nn.Module):
    """Conv + BatchNorm + Linear, a persistent and a non-persistent buffer."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.bn = nn.BatchNorm2d(2)
        self.fc = nn.Linear(2, 3)
        self.register_buffer("scale", torch.ones(3))
        self.register_buffer("offset", torch.zeros(1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Conv, BatchNorm, global mean, Linear, scaled and shifted."""
        return self.fc(self.bn(self.conv(x)).mean((2, 3))) * self.scale + self.offset


class Tree(nn.Module):
    """Containers, tying, frozen and missing parameters, non-state tensors and values."""

    def __init__(self) -> None:
        super().__init__()
        self.seq = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
        self.blocks = nn.ModuleList([nn.Linear(2, 2, bias=i == 0) for i in range(2)])
        self.emb = nn.Embedding(3, 2)
        self.head = nn.Linear(2, 3, bias=False)
        self.head.weight = self.emb.weight
        self.frozen = nn.Parameter(torch.zeros(2, dtype=torch.float64), requires_grad=False)
        self.plain = torch.ones(2)
        self.sizes = [1, 2, 3]
        self.names = {"a": 1}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Every part used, so scripting keeps it."""
        for block in self.blocks:
            x = block(x)
        return (self.seq(x) + self.plain + self.frozen.float() + self.sizes[0]
                + self.head(x).sum() + self.names["a"])


class NoTensors(nn.Module):
    """A module without parameters or buffers."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Doubles its input."""
        return x * 2


def main() -> None:
    """Write every fixture next to this script."""
    torch.manual_seed(0)
    for name, module in (("scripted.pt", Scripted()), ("tree.pt", Tree()),
                         ("no_tensors.pt", NoTensors())):
        torch.jit.save(torch.jit.script(module), HERE / name)
        print(f"wrote {name} ({(HERE / name).stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
