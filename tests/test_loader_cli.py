"""``diff --loader`` and the judged headline, through the command line (issue 15)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

torch = pytest.importorskip("torch", reason="the demo checkpoint and model are torch")

MODEL = '''import torch.nn as nn
def build(classes=10):
    return nn.Sequential(nn.Linear(16, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, classes))
'''


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "ckptdiff", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, check=False)


@pytest.fixture()
def demo(tmp_path: Path) -> Path:
    (tmp_path / "demo_model.py").write_text(MODEL)
    sys.path.insert(0, str(tmp_path))
    try:
        import demo_model  # type: ignore[import-not-found]

        state = demo_model.build(5).state_dict()
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("demo_model", None)
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}},
               tmp_path / "finetuned.pth")
    return tmp_path


def test_headline_names_the_loader_and_what_the_fix_leaves(demo: Path) -> None:
    result = _run("diff", "finetuned.pth", "demo_model.py:build", cwd=demo)
    assert result.returncode == 1, result.stderr
    first, reason, outlook = result.stdout.splitlines()[:3]
    assert first.startswith("✗ INCOMPATIBLE by torch.nn.Module.load_state_dict(strict=True)")
    assert reason.strip().startswith("load_state_dict raises:")
    assert outlook.strip() == ("after strip prefix 'module.' (7 keys): 2 shape mismatches "
                               "remain: 3.weight [5, 32] vs [10, 32], 3.bias [5] vs [10]")


def test_json_verdicts_follow_the_schema(demo: Path, report_schema: dict[str, object]) -> None:
    result = _run("diff", "finetuned.pth", "demo_model.py:build", "-f", "json", cwd=demo)
    document = json.loads(result.stdout)
    jsonschema.validate(document, report_schema)
    names = [v["name"] for v in document["verdicts"]]
    assert names == ["load_state_dict", "load_state_dict-nonstrict"]
    assert document["verdicts"][0]["default"] and not document["verdicts"][1]["default"]
    assert document["compatible"] is document["verdicts"][0]["loads"] is False
    assert document["after_fix"]["loads"] is False
    assert {f["key"] for f in document["after_fix"]["remaining"]} == {"3.weight", "3.bias"}


def test_loader_option_picks_the_judge(demo: Path) -> None:
    result = _run("diff", "finetuned.pth", "demo_model.py:build", "-f", "json",
                  "--loader", "load_state_dict-nonstrict", cwd=demo)
    verdicts = json.loads(result.stdout)["verdicts"]
    assert [v["name"] for v in verdicts][0] == "load_state_dict-nonstrict"
    assert verdicts[0]["default"]
    unknown = _run("diff", "finetuned.pth", "demo_model.py:build", "--loader", "nope", cwd=demo)
    assert unknown.returncode == 2 and "Traceback" not in unknown.stderr
    assert unknown.stderr.count("\n") == 1
    assert "choose from load_state_dict, load_state_dict-nonstrict, key-parity" in unknown.stderr
