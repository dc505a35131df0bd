"""``inspect --tree/--depth/--filter``, ``diff --tree`` and ``--format html`` from the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.helpers import manifest, t

SHARDED = Path(__file__).resolve().parent.parent / "testdata/readers/safetensors/sharded"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ckptdiff", *args], capture_output=True,
                          text=True, env={**os.environ, "COLUMNS": "100"})


@pytest.fixture()
def pair(tmp_path: Path) -> tuple[Path, Path]:
    """A source with one broken layer of eight and the target it should load into."""
    target = manifest(*(t(f"enc.layers.{i}.{n}", 4, 4) for i in range(8) for n in ("w", "b")))
    source = manifest(*(t(f"enc.layers.{i}.{n}", 5 if (i, n) == (6, "w") else 4, 4)
                        for i in range(8) for n in ("w", "b")))
    paths = (tmp_path / "source.manifest.json", tmp_path / "target.manifest.json")
    for path, m in zip(paths, (source, target), strict=True):
        path.write_text(m.to_json())
    return paths


def test_inspect_tree_shows_sizes_and_shards() -> None:
    result = run("inspect", str(SHARDED), "--tree")
    assert result.returncode == 0, result.stderr
    assert "layers.0  2 tensors · 6 params · 12 B" in result.stdout
    assert "model-00002-of-00002.safetensors  2 tensors" in result.stdout


def test_depth_and_filter_imply_tree() -> None:
    shallow = run("inspect", str(SHARDED), "--depth", "1")
    assert shallow.returncode == 0 and "layers.0  2 tensors" in shallow.stdout
    assert "weight  [2, 2] float16" not in shallow.stdout
    filtered = run("inspect", str(SHARDED), "--filter", "*.bias")
    assert filtered.returncode == 0
    assert "1 of 4 tensors match '*.bias'" in filtered.stdout
    assert "embed.weight" not in filtered.stdout.split("\n", 2)[2]
    assert run("inspect", str(SHARDED), "--depth", "0").returncode == 2


def test_diff_tree_collapses_healthy_layers(pair: tuple[Path, Path]) -> None:
    source, target = pair
    result = run("diff", str(source), str(target), "--tree")
    assert result.returncode == 1
    assert "{0..5,7}  ×7  ✓ 2 matched each" in result.stdout
    assert "w  ✗ shape [5, 4] → [4, 4] float32" in result.stdout


def test_diff_html_to_stdout_and_to_a_file(pair: tuple[Path, Path], tmp_path: Path) -> None:
    source, target = pair
    page = run("diff", str(source), str(target), "--format", "html")
    assert page.returncode == 1
    assert page.stdout.startswith("<!DOCTYPE html>")
    assert "enc.layers.6.w" in page.stdout
    out = tmp_path / "report.html"
    to_file = run("diff", str(source), str(target), "-f", "html", "-o", str(out), "--tree")
    assert to_file.returncode == 1
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert "×7  ✓ 2 matched each" in to_file.stdout  # the terminal shows the tree meanwhile


def test_inspect_html(tmp_path: Path) -> None:
    result = run("inspect", str(SHARDED), "--format", "html")
    assert result.returncode == 0
    assert "<h2>Shards</h2>" in result.stdout and "embed.weight" in result.stdout


def test_tree_leaves_the_json_report_alone(pair: tuple[Path, Path]) -> None:
    source, target = pair
    plain = run("diff", str(source), str(target), "-f", "json")
    with_tree = run("diff", str(source), str(target), "-f", "json", "--tree")
    assert json.loads(plain.stdout)["schema"] == "ckptdiff.report/1"
    assert with_tree.stdout == plain.stdout
