"""The model. Changing a layer here without updating snapshots/ fails the ckptdiff check."""

from __future__ import annotations

from torch import nn

HIDDEN = 16


class TinyClassifier(nn.Module):
    """An encoder, a norm and a classification head."""

    def __init__(self, num_labels: int = 3) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(8, HIDDEN), nn.GELU(), nn.Linear(HIDDEN, HIDDEN))
        self.norm = nn.LayerNorm(HIDDEN)
        self.classifier = nn.Linear(HIDDEN, num_labels)


def build(num_labels: int = 3) -> TinyClassifier:
    """The model as the released checkpoints were trained."""
    return TinyClassifier(num_labels)
