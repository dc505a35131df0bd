"""The console script's fast lane serves plain ``inspect`` exactly as the typer CLI does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.helpers import manifest, t

import ckptdiff
from ckptdiff.cli.entry import InspectCall, parse_plain_inspect


@pytest.mark.parametrize("argv, call", [
    (["inspect", "a.pth"], InspectCall("a.pth")),
    (["inspect", "a.pth", "--format", "json"], InspectCall("a.pth", "json")),
    (["inspect", "-f", "json", "a.pth"], InspectCall("a.pth", "json")),
    (["inspect", "a.pth", "--format=table", "--key", "ema"], InspectCall("a.pth", "table", "ema")),
    (["inspect", "--key=model", "a.pth", "-q"], InspectCall("a.pth", "table", "model", True)),
])
def test_plain_inspect_calls_are_recognised(argv: list[str], call: InspectCall) -> None:
    assert parse_plain_inspect(argv) == call


@pytest.mark.parametrize("argv", [
    [], ["diff", "a", "b"], ["inspect"], ["inspect", "a", "b"], ["inspect", "a", "--tree"],
    ["inspect", "a", "--format", "html"], ["inspect", "a", "--help"], ["inspect", "a", "-v"],
    ["inspect", "a", "--format"], ["inspect", "a", "--key", "x", "--key", "y"],
    ["inspect", "a", "--unsafe-report"], ["inspect", "-", "--format", "json"], ["formats"],
])
def test_everything_else_goes_to_the_full_cli(argv: list[str]) -> None:
    assert parse_plain_inspect(argv) is None


def _run(*args: str, fast: bool, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, COLUMNS="100")
    env.pop("CKPTDIFF_NO_FAST_PATH", None)
    if not fast:
        env["CKPTDIFF_NO_FAST_PATH"] = "1"
    return subprocess.run([sys.executable, "-m", "ckptdiff", *args], capture_output=True,
                          text=True, env=env, cwd=cwd)


@pytest.mark.parametrize("args", [
    ("inspect", "m.manifest.json"), ("inspect", "m.manifest.json", "--format", "json"),
    ("inspect", "missing.pth"), ("inspect", "empty.pth", "-f", "json"),
    ("inspect", "m.manifest.json", "--key", "x"),
])
def test_fast_lane_output_equals_the_full_cli(args: tuple[str, ...], tmp_path: Path) -> None:
    (tmp_path / "m.manifest.json").write_text(
        manifest(t("encoder.layer.0.weight", 4, 4), t("encoder.layer.1.weight", 4, 4)).to_json())
    (tmp_path / "empty.pth").write_bytes(b"")
    fast, full = _run(*args, fast=True, cwd=tmp_path), _run(*args, fast=False, cwd=tmp_path)
    assert (fast.returncode, fast.stdout, fast.stderr) == (
        full.returncode, full.stdout, full.stderr)


def test_package_exports_resolve_lazily() -> None:
    for name in ckptdiff.__all__:
        assert getattr(ckptdiff, name) is not None
    with pytest.raises(AttributeError):
        ckptdiff.no_such_name  # noqa: B018
