"""Write the tiny ``torch.export.save`` fixtures of the reader conformance suite (needs torch).

Run from anywhere: ``python testdata/readers/torch_export/make_fixtures.py``; then regenerate the
goldens with ``python tests/regen_golden.py`` and review them. Files stay ~20 KB.

- ``module.pt2``: a Conv/BatchNorm/Linear model with a persistent and a non-persistent buffer
  (the latter is a constant of the program, not in its state dict).
- ``tied.pt2``: an embedding tied to the output head (one weight file, two keys) and a plain
  tensor attribute (a lifted tensor constant).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

HERE = Path(__file__).resolve().parent


class Module(nn.Module):
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


class Tied(nn.Module):
    """Embedding and head sharing one weight, and a plain tensor attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(4, 3)
        self.head = nn.Linear(3, 4, bias=False)
        self.head.weight = self.emb.weight
        self.shift = torch.ones(3)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Embed, shift, project back onto the vocabulary."""
        return self.head(self.emb(ids) + self.shift)


def main() -> None:
    """Write every fixture next to this script."""
    torch.manual_seed(0)
    cases = {"module.pt2": (Module(), (torch.randn(1, 1, 5, 5),)),
             "tied.pt2": (Tied(), (torch.tensor([[1, 2]]),))}
    for name, (module, args) in cases.items():
        torch.export.save(torch.export.export(module, args), HERE / name)
        print(f"wrote {name} ({(HERE / name).stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
