"""Play a pull request: a model package with a committed snapshot, then changes to the model.

A changed layer width must fail ``ckptdiff diff``/``check`` with the right ``::error``
annotation; changes the policy allows (allow-missing, ignore, allow-rename) must pass.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import jsonschema
import pytest

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "ci"
SNAPSHOT = "snapshots/tinynet.manifest.json"
MODEL = '''from torch import nn

HIDDEN = {hidden}


class Backbone(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(4, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, HIDDEN))
        self.norm = nn.LayerNorm(HIDDEN)


class TinyNet(nn.Module):
    def __init__(self, num_labels: int = {labels}) -> None:
        super().__init__()
        {body}
        self.classifier = nn.Linear(HIDDEN, num_labels)
        nn.init.constant_(self.classifier.bias, 1234.5678)


def build(num_labels: int = {labels}) -> TinyNet:
    return TinyNet(num_labels)
'''
FLAT = "self.encoder = Backbone().encoder\n        self.norm = nn.LayerNorm(HIDDEN)"
WRAPPED = "self.backbone = Backbone()"
CONFIG = f'''[project]
name = "tinynet"

[tool.ckptdiff]
{{policy}}

[[tool.ckptdiff.snapshots]]
snapshot = "{SNAPSHOT}"
model = "tinynet.model:build"
'''
TENSOR_FIELDS = {"key", "shape", "dtype", "device", "nbytes", "storage", "aliases", "kind",
                 "trainable", "stride", "storage_offset", "slot_of", "variable_name"}


def ckptdiff(*args: str, cwd: Path, seed: str = "0") -> subprocess.CompletedProcess[str]:
    # No bytecode: a model.py rewritten within the same second must not run from a stale .pyc.
    env = dict(os.environ, PYTHONHASHSEED=seed, PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run([sys.executable, "-m", "ckptdiff", *args], capture_output=True,
                          text=True, cwd=cwd, env=env)


def write_model(project: Path, hidden: int = 8, labels: int = 2, body: str = FLAT) -> None:
    (project / "tinynet" / "model.py").write_text(
        MODEL.format(hidden=hidden, labels=labels, body=body))


def write_policy(project: Path, policy: str = "") -> None:
    (project / "pyproject.toml").write_text(CONFIG.format(policy=policy))


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory, manifest_schema: dict[str, Any]) -> Path:
    """The repository at the last release: model package, config, committed snapshot."""
    pytest.importorskip("torch", reason="torch is not installed")
    root = tmp_path_factory.mktemp("released")
    (root / "tinynet").mkdir()
    (root / "tinynet" / "__init__.py").write_text("")
    (root / "snapshots").mkdir()
    write_model(root)
    write_policy(root)
    first = ckptdiff("snapshot", "tinynet.model:build", "-o", SNAPSHOT, cwd=root, seed="1")
    assert first.returncode == 0, first.stderr
    jsonschema.validate(json.loads((root / SNAPSHOT).read_text()), manifest_schema)
    return root


@pytest.fixture()
def project(released: Path, tmp_path: Path) -> Path:
    """A fresh checkout of the release for one pull request."""
    return Path(shutil.copytree(released, tmp_path / "repo"))


def annotations(stdout: str) -> list[tuple[str, dict[str, str], str]]:
    parsed = []
    for line in stdout.splitlines():
        match = re.match(r"^::(error|warning|notice)(?: ([^:]*))?::(.*)$", line)
        assert match is not None, line
        properties = dict(p.split("=", 1) for p in (match[2] or "").split(",") if p)
        parsed.append((match[1], {k: unquote(v) for k, v in properties.items()},
                       unquote(match[3])))
    return parsed


def test_snapshot_is_deterministic_and_holds_no_values(project: Path) -> None:
    again = project / "again.json"
    assert ckptdiff("snapshot", "tinynet.model:build", "-o", str(again), cwd=project,
                    seed="2").returncode == 0
    text = (project / SNAPSHOT).read_text()
    assert again.read_text() == text
    assert "1234.5678" not in text and "0x" not in text and str(project) not in text
    document = json.loads(text)
    assert [t["key"] for t in document["tensors"]] == sorted(t["key"] for t in document["tensors"])
    assert all(set(t) <= TENSOR_FIELDS for t in document["tensors"])
    assert document["metadata"]["model_class"] == "tinynet.model.TinyNet"
    assert ckptdiff("check", cwd=project).returncode == 0
    # A snapshot is a TARGET too; a model given as a file gets the same snapshot everywhere.
    assert ckptdiff("diff", SNAPSHOT, str(again), cwd=project).returncode == 0
    by_file = [project / "file1.json", project / "file2.json"]
    for seed, out in zip(("3", "4"), by_file, strict=True):
        result = ckptdiff("snapshot", "tinynet/model.py:build", "-o", str(out), cwd=project,
                          seed=seed)
        assert result.returncode == 0, result.stderr
    assert by_file[0].read_text() == by_file[1].read_text()
    assert '"model_class": "_ckptdiff_model_model.TinyNet"' in by_file[0].read_text()
    write_model(project, hidden=16)
    assert ckptdiff("diff", str(by_file[0]), "tinynet/model.py:build", cwd=project).returncode == 1


def test_changed_layer_width_fails_with_error_annotations(
        project: Path, report_schema: dict[str, Any]) -> None:
    write_model(project, hidden=16)
    result = ckptdiff("diff", SNAPSHOT, "tinynet.model:build", "--format", "json",
                      "--output", "report.json", cwd=project)
    assert result.returncode == 1
    assert "INCOMPATIBLE" in result.stdout  # the terminal shows the table when --output is set
    document = json.loads((project / "report.json").read_text())
    jsonschema.validate(document, report_schema)
    assert document["compatible"] is False and document["summary"]["shape"] == 7
    result = ckptdiff("diff", SNAPSHOT, "tinynet.model:build", "--format", "github", cwd=project)
    assert result.returncode == 1, result.stderr
    errors = {props["title"]: message for command, props, message in annotations(result.stdout)
              if command == "error"}
    assert errors["ckptdiff shape: encoder.2.weight"].startswith(
        "encoder.2.weight: shape differs: source [8, 8] float32 cpu, target [16, 16] float32 cpu")
    first_layer = errors["ckptdiff shape: encoder.0.weight"]
    assert "dim 0 is 8 in the source, 16 in the target" in first_layer
    assert all(title.startswith("ckptdiff shape: ") for title in errors)


def test_check_writes_every_format_and_points_at_the_snapshot(
        project: Path, report_schema: dict[str, Any]) -> None:
    write_model(project, hidden=16)
    result = ckptdiff("check", "--format", "github", cwd=project)
    assert result.returncode == 1 and "1 of 1 snapshots fail" in result.stderr
    assert {props.get("file") for command, props, _ in annotations(result.stdout)
            if command == "error"} == {SNAPSHOT}
    junit = ckptdiff("check", "-f", "junit", "-o", "junit.xml", "--exit-zero", cwd=project)
    assert junit.returncode == 0 and "INCOMPATIBLE" in junit.stdout
    root = ET.parse(project / "junit.xml").getroot()
    assert root.get("failures") != "0"
    assert root.get("tests") == str(len(list(root.iter("testcase"))))
    as_json = ckptdiff("check", "-f", "json", cwd=project)
    reports = json.loads(as_json.stdout)
    assert len(reports) == 1
    jsonschema.validate(reports[0], report_schema)
    assert reports[0]["source"]["path"] == SNAPSHOT


def test_allowed_changes_pass(project: Path) -> None:
    # A new label set reshapes the head: allowed by policy, it is info with a note.
    write_model(project, labels=5)
    assert ckptdiff("check", cwd=project).returncode == 1
    assert ckptdiff("check", "--ignore", "classifier.*", cwd=project).returncode == 0
    write_policy(project, 'allow-missing = ["classifier.*"]')
    result = ckptdiff("check", "-f", "markdown", "-o", "summary.md", cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    summary = (project / "summary.md").read_text()
    assert "✅ ckptdiff: compatible" in summary and "allowed by policy" in summary

    # Wrapping layers in a backbone renames keys: a confident rename passes when allowed.
    write_model(project, labels=5, body=WRAPPED)
    assert ckptdiff("check", cwd=project).returncode == 1
    renamed = ckptdiff("check", "--allow-rename", "-f", "github", cwd=project)
    assert renamed.returncode == 0, renamed.stdout
    notes = [message for command, _, message in annotations(renamed.stdout) if command == "notice"]
    assert any("renamed (add prefix 'backbone.', confidence 0.99)" in n for n in notes)


def test_update_accepts_an_intended_change(project: Path) -> None:
    write_model(project, hidden=16)
    assert ckptdiff("check", cwd=project).returncode == 1
    update = ckptdiff("check", "--update", cwd=project)
    assert update.returncode == 0 and f"updated: {SNAPSHOT}" in update.stderr
    assert ckptdiff("check", cwd=project).returncode == 0


def test_check_from_a_subdirectory_and_without_snapshots(project: Path) -> None:
    assert ckptdiff("check", cwd=project / "tinynet").returncode == 0
    (project / SNAPSHOT).unlink()
    missing = ckptdiff("check", cwd=project)
    assert missing.returncode == 2 and "ckptdiff check --update" in missing.stderr
    (project / "pyproject.toml").write_text("[tool.ckptdiff]\n")
    empty = ckptdiff("check", cwd=project)
    assert empty.returncode == 2 and "no snapshots configured" in empty.stderr


def test_example_project_passes_its_own_check(tmp_path: Path) -> None:
    pytest.importorskip("torch", reason="torch is not installed")
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed")
    copy = tmp_path / "example"
    shutil.copytree(EXAMPLE, copy)
    result = ckptdiff("check", "-f", "markdown", "-o", "summary.md", cwd=copy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "✅ ckptdiff" in (copy / "summary.md").read_text()
    workflow = yaml.safe_load((EXAMPLE / ".github" / "workflows" / "model-compat.yml").read_text())
    runs = "\n".join(step.get("run", "") for step in workflow["jobs"]["ckptdiff"]["steps"])
    assert "ckptdiff check --format github" in runs
    assert '>> "$GITHUB_STEP_SUMMARY"' in runs and "gh pr comment" in runs
    assert workflow["permissions"]["pull-requests"] == "write"
