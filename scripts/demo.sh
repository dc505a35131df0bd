#!/usr/bin/env bash
# Shows a real diff: a DataParallel-style checkpoint with a resized head against a live model.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
cat > "$work/demo_model.py" <<'PY'
import torch
from torch import nn


def build(num_classes: int = 10) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 16, 3), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 3), nn.BatchNorm2d(32), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, num_classes),
    )


if __name__ == "__main__":
    import sys

    old = build(num_classes=5)
    state = {"module." + k: v for k, v in old.state_dict().items()}  # saved from DataParallel
    torch.save({"epoch": 7, "state_dict": state}, sys.argv[1])
PY
.venv/bin/python "$work/demo_model.py" "$work/finetuned.pth"
cd "$work"
echo "\$ ckptdiff inspect finetuned.pth"
"$OLDPWD/.venv/bin/ckptdiff" inspect finetuned.pth
echo
echo "\$ ckptdiff diff finetuned.pth demo_model.py:build"
"$OLDPWD/.venv/bin/ckptdiff" diff finetuned.pth demo_model.py:build || echo "(exit code $?: incompatible)"
