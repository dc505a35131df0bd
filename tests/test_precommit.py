"""The ckptdiff-snapshots pre-commit hook, run by the real pre-commit in a temporary repository.

The hook is ``language: system``: nothing is downloaded at install time; it runs the ckptdiff on
PATH (this virtual environment's), which needs torch to build the model.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODEL = "from torch import nn\n\n\ndef build():\n    return nn.Sequential(nn.Linear(3, {width}))\n"
CONFIG = """[project]
name = "tinyproj"

[tool.ckptdiff]

[[tool.ckptdiff.snapshots]]
snapshot = "snapshots/tinyproj.manifest.json"
model = "tinyproj:build"
"""


def git_env(tmp_path: Path) -> dict[str, str]:
    """An isolated environment: our ckptdiff first on PATH, no user git or pre-commit state."""
    bin_dir = str(Path(sys.executable).parent)
    return dict(
        os.environ, PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""),
        PRE_COMMIT_HOME=str(tmp_path / "pre-commit-home"), GIT_CONFIG_GLOBAL=os.devnull,
        GIT_CONFIG_NOSYSTEM="1", GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com",
        GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.com", PYTHONDONTWRITEBYTECODE="1",
    )


def sh(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, text=True)


@pytest.fixture()
def repos(tmp_path: Path) -> tuple[Path, Path, dict[str, str]]:
    """A hooks repository holding our .pre-commit-hooks.yaml, and a model project using it."""
    pytest.importorskip("torch", reason="torch is not installed")
    pytest.importorskip("pre_commit", reason="pre-commit is not installed")
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    env = git_env(tmp_path)
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    shutil.copy(ROOT / ".pre-commit-hooks.yaml", hooks)
    for args in (("git", "init", "-q"), ("git", "add", "."), ("git", "commit", "-qm", "hooks")):
        assert sh(*args, cwd=hooks, env=env).returncode == 0
    project = tmp_path / "project"
    (project / "snapshots").mkdir(parents=True)
    (project / "tinyproj.py").write_text(MODEL.format(width=4))
    (project / "pyproject.toml").write_text(CONFIG)
    snap = sh(sys.executable, "-m", "ckptdiff", "check", "--update", cwd=project, env=env)
    assert snap.returncode == 0, snap.stderr
    assert sh("git", "init", "-q", cwd=project, env=env).returncode == 0
    assert sh("git", "add", ".", cwd=project, env=env).returncode == 0
    return hooks, project, env


def test_try_repo_passes_then_fails_on_a_wider_layer(
        repos: tuple[Path, Path, dict[str, str]]) -> None:
    hooks, project, env = repos
    command = (sys.executable, "-m", "pre_commit", "try-repo", str(hooks), "ckptdiff-snapshots",
               "--all-files", "--verbose")
    passing = sh(*command, cwd=project, env=env)
    assert passing.returncode == 0, passing.stdout + passing.stderr
    assert "Passed" in passing.stdout and "compatible" in passing.stdout

    (project / "tinyproj.py").write_text(MODEL.format(width=6))
    assert sh("git", "add", "tinyproj.py", cwd=project, env=env).returncode == 0
    failing = sh(*command, cwd=project, env=env)
    assert failing.returncode == 1, failing.stdout + failing.stderr
    assert "Failed" in failing.stdout and "INCOMPATIBLE" in failing.stdout
    assert "0.weight" in failing.stdout


def test_example_local_config_runs_the_hook(repos: tuple[Path, Path, dict[str, str]]) -> None:
    _, project, env = repos
    shutil.copy(ROOT / "examples" / "ci" / ".pre-commit-config.yaml", project)
    assert sh("git", "add", ".pre-commit-config.yaml", cwd=project, env=env).returncode == 0
    result = sh(sys.executable, "-m", "pre_commit", "run", "--all-files", cwd=project, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ckptdiff snapshots still load into the models" in result.stdout
