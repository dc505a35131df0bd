"""``ckptdiff diff --explain``: the dry-run section after the table and the JSON ``explain``."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import jsonschema
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed")

MODELS = textwrap.dedent("""
    import torch
    from torch import nn

    def wider():
        return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))

    class WithPlainTensor(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
            self.scale = torch.ones(2, requires_grad=True)
""")


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ckptdiff", *args], capture_output=True,
                          text=True, cwd=cwd)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("explain_cli")
    (folder / "models.py").write_text(MODELS)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    torch.save({"state_dict": model.state_dict()}, folder / "ckpt.pt")
    return folder


def test_table_ends_with_the_dry_run(project: Path) -> None:
    result = run("diff", "ckpt.pt", "models.py:wider", "--explain", cwd=project)
    assert result.returncode == 1, result.stderr
    table, _, section = result.stdout.partition("Load dry run")
    assert "shape" in table and section
    assert "model.load_state_dict(torch.load('ckpt.pt')['state_dict'], strict=False)" in section
    assert "raises: RuntimeError even with strict=False: size mismatch for 2.weight" in section


def test_json_carries_explain_and_validates(project: Path, report_schema: dict[str, Any]) -> None:
    result = run("diff", "ckpt.pt", "models.py:wider", "--explain", "-f", "json", cwd=project)
    document = json.loads(result.stdout)
    jsonschema.validate(document, report_schema)
    outcomes = [(e["framework"], e["outcome"]) for e in document["explain"]]
    assert outcomes == [("torch", "raises"), ("torch", "raises")]
    assert document["explain"][0]["keys"] == ["2.weight", "2.bias"]
    plain = json.loads(run("diff", "ckpt.pt", "models.py:wider", "-f", "json",
                           cwd=project).stdout)
    assert "explain" not in plain


def test_markdown_section_and_unregistered_row(project: Path) -> None:
    result = run("diff", "ckpt.pt", "models.py:WithPlainTensor", "--explain", "-f", "markdown",
                 "--ignore", "body.*", "--ignore", "0.*", "--ignore", "2.*", cwd=project)
    assert "### Load dry run" in result.stdout
    assert "unregistered" in result.stdout and "model.scale" in result.stdout
