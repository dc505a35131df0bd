"""torch.load(weights_only=True) refusing a file is the strict loader's verdict too.

ckptdiff reads numpy scalars, Lightning hyper-parameters and protocol-4 pickles as plain data,
but the default torch loader (``load_state_dict(torch.load(path, weights_only=True)...)``) never
gets that far: the verdict must say it fails, and why, whatever the keys say.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import ckptdiff

torch = pytest.importorskip("torch", reason="torch writes the files and is the oracle")
np = pytest.importorskip("numpy")


def refused_by_torch(path: Path) -> bool:
    try:
        torch.load(path, weights_only=True)
    except Exception:  # torch raises UnpicklingError (wrapped) for refused globals/opcodes
        return True
    return False


@pytest.mark.parametrize(("name", "contents", "options"), [
    ("protocol4", lambda sd: sd, {"pickle_protocol": 4}),
    ("numpy-metric", lambda sd: {"state_dict": sd, "metric": np.float64(0.5)}, {}),
    ("plain", lambda sd: sd, {}),
])
def test_the_verdict_follows_torch_load_weights_only(tmp_path: Path, name: str,
                                                     contents: Any,
                                                     options: dict[str, Any]) -> None:
    model = torch.nn.Linear(3, 2)
    path = tmp_path / f"{name}.pth"
    torch.save(contents(model.state_dict()), path, **options)
    refused = refused_by_torch(path)
    assert refused == (name != "plain")  # the oracle's view of the three files
    report = ckptdiff.diff(path, model)
    verdict = report.verdicts[0]
    assert verdict.default and verdict.loader.startswith("torch.nn.Module.load_state_dict")
    assert report.compatible is (not refused)
    if refused:
        assert verdict.reason.startswith("torch.load(weights_only=True) raises first")
        assert verdict.refuses_file
        # No policy on keys accepts a file the loader refuses.
        assert not ckptdiff.diff(path, model, ignore=["*"]).compatible
