"""The command line: exit codes, one-line errors, output formats."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from tests.helpers import manifest, t

from ckptdiff.manifest import Manifest


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ckptdiff", *args], capture_output=True,
                          text=True, cwd=cwd)


@pytest.fixture()
def snapshots(tmp_path: Path) -> tuple[Path, Path, Path]:
    base = manifest(t("encoder.weight", 4, 4), t("encoder.bias", 4), t("head.weight", 2, 4))
    wrapped = manifest(*(t("module." + x.key, *x.shape) for x in base))
    wider = manifest(t("encoder.weight", 4, 4), t("encoder.bias", 4), t("head.weight", 3, 4))
    paths = []
    for name, m in (("base", base), ("wrapped", wrapped), ("wider", wider)):
        path = tmp_path / f"{name}.manifest.json"
        path.write_text(m.to_json())
        paths.append(path)
    return paths[0], paths[1], paths[2]


def test_compatible_exits_zero(snapshots: tuple[Path, Path, Path]) -> None:
    base, _, _ = snapshots
    result = run("diff", str(base), str(base))
    assert result.returncode == 0, result.stderr
    assert "compatible" in result.stdout


def test_incompatible_exits_one_with_grouped_table(snapshots: tuple[Path, Path, Path]) -> None:
    base, wrapped, _ = snapshots
    result = run("diff", str(wrapped), str(base))
    assert result.returncode == 1
    assert "INCOMPATIBLE" in result.stdout
    assert "{encoder,head}" in result.stdout or "encoder.{weight,bias}" in result.stdout
    assert "strip prefix 'module.'" in result.stdout
    assert run("diff", str(wrapped), str(base), "--exit-zero").returncode == 0


def test_json_output_validates(snapshots: tuple[Path, Path, Path],
                               report_schema: dict[str, object]) -> None:
    base, _, wider = snapshots
    result = run("diff", str(wider), str(base), "--format", "json")
    assert result.returncode == 1
    document = json.loads(result.stdout)
    jsonschema.validate(document, report_schema)
    assert document["summary"]["shape"] == 1
    assert document["findings"][0]["key"] == "head.weight"


def test_ignore_and_fail_on(snapshots: tuple[Path, Path, Path], tmp_path: Path) -> None:
    base, _, wider = snapshots
    assert run("diff", str(wider), str(base), "--ignore", "head.*").returncode == 0
    half = manifest(t("encoder.weight", 4, 4, dtype="float16"), t("encoder.bias", 4),
                    t("head.weight", 2, 4))
    path = tmp_path / "half.manifest.json"
    path.write_text(half.to_json())
    assert run("diff", str(path), str(base)).returncode == 0
    assert run("diff", str(path), str(base), "--fail-on", "warning").returncode == 1


@pytest.mark.parametrize("args, message", [
    (("inspect", "does-not-exist.pth"), "no such file or directory"),
    (("diff", "does-not-exist.pth", "x.pth"), "no such file or directory"),
    (("diff", "{base}", "{base}", "--model-kwargs", "not json"), "not valid JSON"),
    (("inspect", "{empty}"), "file is empty"),
    (("inspect", "{junk}"), "unknown checkpoint format"),
    (("inspect", "{lfs}"), "Git LFS pointer"),
    (("inspect", "{emptydir}"), "directory is empty"),
])
def test_bad_input_is_one_line_exit_two(args: tuple[str, ...], message: str,
                                        snapshots: tuple[Path, Path, Path],
                                        tmp_path: Path) -> None:
    (tmp_path / "empty.pth").write_bytes(b"")
    (tmp_path / "junk.dat").write_bytes(b"\x00junk" * 100)
    (tmp_path / "lfs.safetensors").write_text(
        "version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 123\n")
    (tmp_path / "emptydir").mkdir()
    values = {"base": str(snapshots[0]), "empty": str(tmp_path / "empty.pth"),
              "junk": str(tmp_path / "junk.dat"), "lfs": str(tmp_path / "lfs.safetensors"),
              "emptydir": str(tmp_path / "emptydir")}
    result = run(*(a.format(**values) for a in args))
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_inspect_json_round_trips(snapshots: tuple[Path, Path, Path],
                                  manifest_schema: dict[str, object]) -> None:
    base, _, _ = snapshots
    result = run("inspect", str(base), "--format", "json")
    assert result.returncode == 0
    document = json.loads(result.stdout)
    jsonschema.validate(document, manifest_schema)
    assert Manifest.from_dict(document).keys() == ["encoder.weight", "encoder.bias",
                                                   "head.weight"]
    table = run("inspect", str(base))
    assert table.returncode == 0 and "encoder.weight" in table.stdout


def test_snapshot_of_a_live_model_is_deterministic(tmp_path: Path) -> None:
    pytest.importorskip("torch", reason="torch is not installed")
    (tmp_path / "m.py").write_text("from torch import nn\n"
                                   "def build(n=2):\n    return nn.Sequential(nn.Linear(3, n))\n")
    out1, out2 = tmp_path / "a.json", tmp_path / "b.json"
    assert run("snapshot", "m.py:build", "-o", str(out1), cwd=tmp_path).returncode == 0
    assert run("snapshot", "m.py:build", "-o", str(out2), cwd=tmp_path).returncode == 0
    assert out1.read_text() == out2.read_text()
    same = run("diff", str(out1), "m.py:build", cwd=tmp_path)
    assert same.returncode == 0, same.stdout + same.stderr
    changed = run("diff", str(out1), "m.py:build", "--model-kwargs", '{"n": 4}', cwd=tmp_path)
    assert changed.returncode == 1 and "0.weight" in changed.stdout


def test_formats_lists_readers() -> None:
    result = run("formats")
    assert result.returncode == 0
    assert "manifest" in result.stdout
