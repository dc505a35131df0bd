"""``ckptdiff.testing``: assert_compatible, and the ckptdiff_check fixture of the pytest plugin."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import manifest, t

from ckptdiff.api import diff
from ckptdiff.ci.policy import Policy
from ckptdiff.testing import CompatibilityCheck, assert_compatible

BASE = manifest(t("encoder.weight", 4, 4), t("classifier.weight", 2, 4), live=True)
RESHAPED = manifest(t("encoder.weight", 4, 4), t("classifier.weight", 5, 4), live=True)


def test_passing_returns_the_report() -> None:
    report = assert_compatible(BASE, BASE)
    assert report.compatible and report.matched == 2


def test_failure_message_is_the_grouped_report() -> None:
    with pytest.raises(AssertionError) as caught:
        assert_compatible(BASE, RESHAPED)
    assert str(caught.value) == diff(BASE, RESHAPED).to_text()
    assert "INCOMPATIBLE" in str(caught.value) and "classifier.weight" in str(caught.value)


def test_settings_and_policy_combine() -> None:
    assert assert_compatible(BASE, RESHAPED, ignore=["classifier.*"]).compatible
    allowed = assert_compatible(BASE, RESHAPED, allow_missing=["classifier.*"])
    assert [f.severity for f in allowed.findings] == ["info"]
    half = manifest(t("encoder.weight", 4, 4, dtype="float16"), t("classifier.weight", 2, 4))
    assert_compatible(half, BASE)  # a dtype difference is a warning
    with pytest.raises(AssertionError, match="dtype"):
        assert_compatible(half, BASE, policy=Policy(fail_on="warning"))
    with pytest.raises(AssertionError):
        assert_compatible(half, BASE, fail_on="warning")


def test_released_safetensors_against_a_live_model(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch", reason="torch is not installed")
    st = pytest.importorskip("safetensors.torch", reason="safetensors is not installed")

    def build_model(num_labels: int = 2) -> Any:
        return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, num_labels))

    released = tmp_path / "released" / "v1.2.safetensors"
    released.parent.mkdir()
    st.save_file(dict(build_model().state_dict()), str(released))
    assert_compatible(str(released), build_model())
    assert_compatible(str(released), build_model(5), ignore=["1.*"])
    with pytest.raises(AssertionError, match=r"shape +1\.weight"):
        assert_compatible(str(released), build_model(5))


def test_fixture_object_reads_the_project_policy(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.ckptdiff]\nallow-missing = ["classifier.*"]\n')
    check = CompatibilityCheck(tmp_path)
    assert check(BASE, RESHAPED).compatible
    assert check.policy.allow_missing == ("classifier.*",)
    with pytest.raises(AssertionError, match="encoder.weight"):
        check(manifest(t("encoder.weight", 8, 4)), BASE)


def test_plugin_is_registered_and_import_cheap() -> None:
    names = {ep.name: ep.value for ep in entry_points(group="pytest11")}
    assert names.get("ckptdiff") == "ckptdiff.testing"
    code = ("import sys, ckptdiff.testing, json\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('torch', 'tensorflow', 'keras', 'pytest', 'rich', 'typer'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == []


def test_fixture_in_a_project_test_session(tmp_path: Path) -> None:
    pytest.importorskip("torch", reason="torch is not installed")
    (tmp_path / "pyproject.toml").write_text('[tool.ckptdiff]\nallow-missing = ["1.*"]\n')
    (tmp_path / "test_model.py").write_text('''
from torch import nn

from ckptdiff.api import snapshot


def build(hidden=4, labels=2):
    return nn.Sequential(nn.Linear(3, hidden), nn.Linear(hidden, labels))


def test_new_head_is_allowed(ckptdiff_check, tmp_path):
    released = tmp_path / "released.manifest.json"
    released.write_text(snapshot(build()).to_json())
    ckptdiff_check(str(released), build(labels=5))


def test_wider_layer_fails(ckptdiff_check):
    ckptdiff_check(snapshot(build()), build(hidden=8))
''')
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             "test_model.py"], capture_output=True, text=True, cwd=tmp_path)
    assert "1 failed, 1 passed" in result.stdout, result.stdout + result.stderr
    assert "ckptdiff: INCOMPATIBLE" in result.stdout
    assert "0.weight" in result.stdout
