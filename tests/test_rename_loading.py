"""``ckptdiff.load_state_dict``: confident renames applied, or one readable error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import ckptdiff
from ckptdiff.errors import IncompatibleError, UsageError

torch = pytest.importorskip("torch", reason="torch is not installed")
nn = torch.nn


def cnn(classes: int = 10) -> Any:
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(),
                         nn.Linear(32, classes))


def save_dataparallel(model: Any, path: Path) -> None:
    torch.save({"state_dict": {"module." + k: v for k, v in model.state_dict().items()},
                "epoch": 1}, path)


def test_loads_a_dataparallel_checkpoint(tmp_path: Path) -> None:
    torch.manual_seed(1)
    trained = cnn()
    save_dataparallel(trained, tmp_path / "dp.pth")
    model = cnn()
    report = ckptdiff.load_state_dict(model, tmp_path / "dp.pth")
    assert report.compatible
    for key, value in trained.state_dict().items():
        assert torch.equal(model.state_dict()[key], value)


def test_incompatible_raises_one_readable_error_and_loads_nothing(tmp_path: Path) -> None:
    save_dataparallel(cnn(classes=5), tmp_path / "dp.pth")
    model = cnn()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(IncompatibleError) as caught:
        ckptdiff.load_state_dict(model, tmp_path / "dp.pth")
    message = str(caught.value)
    assert "even after 7 confident renames" in message
    assert "module.4.{weight,bias}" in message
    assert "shapes differ: [5, 32] vs [10, 32]" in message
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())


def test_not_strict_loads_what_fits(tmp_path: Path) -> None:
    torch.manual_seed(2)
    trained = cnn(classes=5)
    save_dataparallel(trained, tmp_path / "dp.pth")
    model = cnn()
    report = ckptdiff.load_state_dict(model, tmp_path / "dp.pth", strict=False)
    assert not report.compatible
    assert torch.equal(model[0].weight, trained[0].weight)


def test_tied_weights_are_filled_from_their_twin(tmp_path: Path) -> None:
    class Tied(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(10, 4)
            self.head = nn.Linear(4, 10, bias=False)
            self.head.weight = self.embed.weight

    torch.manual_seed(3)
    trained = Tied()
    torch.save({"model.embed.weight": trained.embed.weight.detach().clone()},
               tmp_path / "t.pth")
    model = Tied()
    assert ckptdiff.load_state_dict(model, tmp_path / "t.pth").compatible
    assert torch.equal(model.head.weight, trained.embed.weight)


def test_only_torch_models(tmp_path: Path) -> None:
    save_dataparallel(cnn(), tmp_path / "dp.pth")
    with pytest.raises(UsageError, match="nn.Module"):
        ckptdiff.load_state_dict(object(), tmp_path / "dp.pth")
