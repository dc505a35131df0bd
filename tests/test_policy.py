"""Policy: [tool.ckptdiff] settings, flags that win, allowed findings that become info."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from tests.helpers import manifest, t

from ckptdiff.ci.config import find_config, load_policy
from ckptdiff.ci.policy import Policy, SnapshotCheck
from ckptdiff.diffing.match import diff_manifests
from ckptdiff.diffing.report import Report
from ckptdiff.errors import UsageError

BASE = [t("encoder.weight", 4, 4), t("encoder.bias", 4), t("classifier.weight", 2, 4)]


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ckptdiff", *args], capture_output=True,
                          text=True, cwd=cwd)


def write_config(folder: Path, body: str) -> Path:
    path = folder / "pyproject.toml"
    path.write_text("[project]\nname = 'x'\n\n[tool.ckptdiff]\n" + body)
    return path


def renamed_report() -> Report:
    """module.-prefixed source (a confident rename) plus a reshaped classifier."""
    source = manifest(*(t("module." + x.key, *x.shape) for x in BASE[:2]),
                      t("classifier.weight", 3, 4), t("aux.weight", 2))
    return diff_manifests(source, manifest(*BASE, live=True))


def test_defaults_without_config(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    policy = load_policy(config=tmp_path / "pyproject.toml")
    assert policy.fail_on == "error" and policy.ignore == () and not policy.allow_rename


def test_config_is_found_upward_and_parsed(tmp_path: Path) -> None:
    path = write_config(tmp_path, """fail-on = "warning"
ignore = ["*.num_batches_tracked"]
allow_missing = ["classifier.*"]
allow-unexpected = "aux.*"
allow-rename = true
rename-confidence = 0.95
exit-zero = false

[[tool.ckptdiff.snapshots]]
snapshot = "snapshots/a.json"
model = "pkg.models:build"
model-kwargs = {num_labels = 3}
""")
    deeper = tmp_path / "src" / "pkg"
    deeper.mkdir(parents=True)
    (tmp_path / "src" / "pyproject.toml").write_text("[project]\nname = 'no-ckptdiff-table'\n")
    assert find_config(deeper) == path
    policy = load_policy(deeper)
    assert policy == Policy(
        fail_on="warning", ignore=("*.num_batches_tracked",), allow_missing=("classifier.*",),
        allow_unexpected=("aux.*",), allow_rename=True, rename_confidence=0.95,
        snapshots=(SnapshotCheck("snapshots/a.json", "pkg.models:build", {"num_labels": 3}),),
        root=tmp_path.resolve())


@pytest.mark.parametrize("body, message", [
    ('fail-on = "fatal"', "fail-on: expected 'error' or 'warning', got 'fatal'"),
    ("ignore = [1, 2]", "ignore: expected a list of glob strings"),
    ('allow-rename = "yes"', "allow-rename: expected true or false"),
    ("rename-confidence = 2", "rename-confidence: expected a number from 0 to 1"),
    ('colour = "red"', "unknown setting 'colour'"),
    ("snapshots = [{model = 'a:b'}]", "snapshots[0].snapshot: expected a non-empty string"),
    ("snapshots = [{snapshot = 'a.json', model = 'a:b', extra = 1}]", "snapshots[0]: expected"),
    ("snapshots = 'a.json'", "snapshots: expected a list of tables"),
    ("ignore = [", "invalid TOML"),
])
def test_invalid_config_is_one_usage_error_naming_file_and_setting(
        tmp_path: Path, body: str, message: str) -> None:
    path = write_config(tmp_path, body + "\n")
    with pytest.raises(UsageError) as caught:
        load_policy(config=path)
    assert str(caught.value).startswith(str(path))
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_invalid_config_exits_two_with_one_line(tmp_path: Path) -> None:
    write_config(tmp_path, 'fail-on = "fatal"\n')
    snapshot = tmp_path / "a.manifest.json"
    snapshot.write_text(manifest(*BASE).to_json())
    result = run("diff", str(snapshot), str(snapshot), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "pyproject.toml" in result.stderr
    assert "fail-on" in result.stderr and "Traceback" not in result.stderr


def test_allow_lists_turn_findings_into_info_with_a_note() -> None:
    report = Policy(allow_missing=("classifier.*",), allow_unexpected=("aux.*",)).apply(
        renamed_report())
    by_key = {f.key: f for f in report.findings}
    shape = by_key["classifier.weight"]
    assert shape.kind == "shape" and shape.severity == "info"
    assert shape.note is not None and shape.note.startswith(
        "allowed by policy (allow-missing 'classifier.*'); dim 0 is 3")
    assert by_key["aux.weight"].severity == "info"
    assert "allowed by policy" in (by_key["aux.weight"].note or "")
    assert by_key["encoder.weight"].severity == "error"  # the rename is not allowed here
    assert not report.compatible


def test_allow_rename_accepts_confident_renames_only() -> None:
    report = renamed_report()
    assert {s.rule for s in report.suggestions} == {"strip prefix 'module.'"}
    allowed = Policy(allow_rename=True, ignore=("classifier.*", "aux.*")).apply(report)
    assert allowed.compatible
    notes = {f.key: f.note for f in allowed.findings}
    assert notes["encoder.weight"] == notes["module.encoder.weight"] == (
        "renamed (strip prefix 'module.', confidence 0.99): allowed by allow-rename")
    strict = Policy(allow_rename=True, rename_confidence=1.0, ignore=("classifier.*", "aux.*"))
    assert not strict.apply(report).compatible


def test_overrides_win_and_globs_add_up() -> None:
    policy = Policy(fail_on="warning", ignore=("a.*",), allow_rename=True, exit_zero=True)
    merged = policy.with_overrides(fail_on="error", ignore=["b.*"], allow_rename=False)
    assert merged.fail_on == "error" and merged.ignore == ("a.*", "b.*")
    assert not merged.allow_rename and merged.exit_zero
    assert policy.with_overrides() == policy


def test_cli_reads_config_and_flags_win(tmp_path: Path, report_schema: dict[str, object]) -> None:
    source = tmp_path / "old.manifest.json"
    target = tmp_path / "new.manifest.json"
    source.write_text(manifest(*BASE[:2], t("classifier.weight", 3, 4)).to_json())
    target.write_text(manifest(*BASE, live=True).to_json())
    assert run("diff", str(source), str(target), cwd=tmp_path).returncode == 1
    write_config(tmp_path, 'allow-missing = ["classifier.*"]\nfail-on = "warning"\n')
    sub = tmp_path / "sub"
    sub.mkdir()
    result = run("diff", str(source), str(target), "--format", "json", cwd=sub)
    assert result.returncode == 0, result.stdout + result.stderr
    document = json.loads(result.stdout)
    jsonschema.validate(document, report_schema)
    assert document["compatible"] is True
    assert "allowed by policy" in document["findings"][0]["note"]
    write_config(tmp_path, 'exit-zero = true\n')
    assert run("diff", str(source), str(target), cwd=sub).returncode == 0
    assert run("diff", str(source), str(target), "--no-exit-zero", cwd=sub).returncode == 1
    other = tmp_path / "other.toml"
    other.write_text("[tool.ckptdiff]\n")
    assert run("diff", str(source), str(target), "--config", str(other), cwd=sub).returncode == 1
