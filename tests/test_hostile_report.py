"""``ckptdiff inspect --unsafe-report``: the scanner view, in table and JSON form, exit 0.

The report lists every global of every pickle with its status; the hostile corpus tests check
that it names exactly the unsafe globals of each malicious file. Here: its shape and wording on
clean, hostile, damaged and pickle-free checkpoints of every kind.
"""

from __future__ import annotations

import io
import json
import pickle
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from tests.hostile.asm import Asm
from tests.hostile.containers import SYS_INFO, state_with, write_dcp, write_legacy, write_zip
from tests.hostile.payloads import Payload
from tests.hostile.pickles import Hostile, global_reduce

from ckptdiff.readers.pickle.unsafe_report import SCHEMA, render_unsafe_table, unsafe_report

TESTDATA = Path(__file__).resolve().parent.parent / "testdata" / "readers"


def hostile(module: str = "os", name: str = "system", protocol: int = 2) -> Hostile:
    payload = Payload(module, name, ("echo",))
    asm = Asm(protocol)
    global_reduce(asm, payload)
    return Hostile("h", bytes(asm.out), frozenset({f"{module}.{name}"}), protocol, payload)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ckptdiff", "inspect", *args],
                          capture_output=True, text=True, timeout=120)


def test_clean_checkpoint_table_and_json() -> None:
    path = TESTDATA / "torch" / "cnn_bn.pth"
    table = cli(str(path), "--unsafe-report")
    assert table.returncode == 0, table.stderr
    assert "cnn_bn/data.pkl" in table.stdout
    assert "allowed      ×1  torch._utils._rebuild_tensor_v2" in table.stdout
    assert table.stdout.rstrip().endswith("verdict: safe: every global is on ckptdiff's "
                                          "allow-list")
    document = json.loads(cli(str(path), "--unsafe-report", "-f", "json").stdout)
    assert document["schema"] == SCHEMA and document["verdict"] == "safe"
    assert document["format"] == "torch-zip" and document["container"] == "zip"
    assert document["unsafe_globals"] == [] and document["notes"] == []
    (member,) = document["pickles"]
    assert member["member"] == "cnn_bn/data.pkl" and member["error"] is None
    assert {g["status"] for g in member["globals"]} == {"allowed"}
    assert all(set(g) == {"name", "count", "status"} for g in member["globals"])


def test_hostile_checkpoint_exits_0_and_names_the_globals(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "evil.pt", state_with(hostile(), legacy=False))
    result = cli(str(path), "--unsafe-report")
    assert result.returncode == 0
    assert "unsafe       ×1  os.system" in result.stdout
    assert ("verdict: unsafe: 1 global outside ckptdiff's allow-list (os.system); nothing was "
            "executed") in result.stdout
    refused = cli(str(path))
    assert refused.returncode == 3 and "os.system" in refused.stderr
    assert "Traceback" not in refused.stderr and refused.stderr.count("\n") == 1


def test_every_pickle_of_a_legacy_file(tmp_path: Path) -> None:
    path = write_legacy(tmp_path / "legacy.pt", state_with(hostile("subprocess", "Popen"), True),
                        sys_info=hostile("builtins", "eval").whole())
    report = unsafe_report(path)
    assert report.format == "torch-legacy" and report.container == "pickle"
    assert [p.member for p in report.pickles] == [f"pickle {n}" for n in range(1, 6)]
    assert report.unsafe_globals == ["builtins.eval", "subprocess.Popen"]
    assert [g.name for g in report.pickles[2].globals] == ["builtins.eval"]


def test_dcp_metadata_and_plain_pickles(tmp_path: Path) -> None:
    folder = write_dcp(tmp_path / "ckpt", hostile(protocol=4).whole())
    report = unsafe_report(folder)
    assert report.container == "torch-dcp" and report.format == "torch-dcp"
    assert report.pickles[0].member == ".metadata" and report.unsafe_globals == ["os.system"]
    plain = tmp_path / "model.pkl"
    plain.write_bytes(pickle.dumps({"a": [1, 2], "b": {3}}, protocol=0))
    report = unsafe_report(plain)
    assert report.container == "pickle" and report.verdict == "safe"
    assert [g.name for g in report.pickles[0].globals] == ["builtins.set"]


def test_checkpoints_without_pickles() -> None:
    for path in (TESTDATA / "safetensors" / "tiny.safetensors", TESTDATA / "tf" / "tf1_saver",
                 TESTDATA / "tf" / "tf2_keras" / "ckpt-1",
                 TESTDATA / "keras" / "model.keras", TESTDATA / "keras" / "model.weights.h5"):
        report = unsafe_report(path)
        assert report.verdict == "no-pickles" and report.pickles == (), path
        assert render_unsafe_table(report).endswith(
            "verdict: no pickles: nothing in this checkpoint is unpickled\n")


def test_torchscript_archives_and_tar_files(tmp_path: Path) -> None:
    script = tmp_path / "script.pt"
    with zipfile.ZipFile(script, "w") as archive:
        archive.writestr("script/data.pkl", hostile("torch.jit", "load").whole())
        archive.writestr("script/constants.pkl", hostile("builtins", "exec").whole())
        archive.writestr("script/code/__torch__.py", "import os\nos.system('x')\n")
    report = unsafe_report(script)
    assert report.unsafe_globals == ["builtins.exec", "torch.jit.load"]
    assert any("TorchScript" in note for note in report.notes)
    tar = tmp_path / "old.tar"
    with tarfile.open(tar, "w") as archive:
        for name, data in (("sys_info", pickle.dumps(SYS_INFO, protocol=2)),
                           ("pickle", hostile("posix", "system").whole()),
                           ("storages", b"\x00" * 64)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    report = unsafe_report(tar)
    assert report.container == "tar" and report.unsafe_globals == ["posix.system"]
    assert [p.member for p in report.pickles] == ["sys_info: pickle 1", "pickle: pickle 1"]


def test_damaged_archives_are_reported_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "dup.pt"
    with pytest.warns(UserWarning, match="Duplicate name"), zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({}, protocol=2))
        archive.writestr("archive/data.pkl", hostile().whole())
    report = unsafe_report(path)
    assert report.unsafe_globals == ["os.system"] and len(report.pickles) == 2
    assert any("names that zip readers can confuse" in note for note in report.notes)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(hostile().whole()[:-6])
    report = unsafe_report(cut)
    assert report.pickles[0].error == "the input ends inside the pickle"
    assert report.unsafe_globals == ["os.system"] and report.verdict == "unsafe"
    cut.write_bytes(pickle.dumps({"a": [1, 2, 3]}, protocol=2)[:-4])
    report = unsafe_report(cut)
    assert report.verdict == "incomplete" and "could not be scanned" in render_unsafe_table(
        report)
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\x03\x04" + bytes(40))
    report = unsafe_report(broken)
    assert report.verdict == "incomplete" and report.notes[0].startswith("not scanned: ")


def test_names_a_pickle_spells_are_escaped(tmp_path: Path) -> None:
    asm = Asm(4)
    asm.stack_global("os\nimport x", "sys\u2028tem", "SHORT_BINUNICODE")
    asm.op(b")R")
    path = write_zip(tmp_path / "odd.pt", asm.complete())
    report = unsafe_report(path)
    table = render_unsafe_table(report)
    assert "os\\nimport x.sys\\u2028tem" in table
    assert all(line.isprintable() for line in table.splitlines())
    assert json.loads(report.to_json())["unsafe_globals"] == ["os\nimport x.sys\u2028tem"]


def test_an_empty_zip_has_no_pickles(tmp_path: Path) -> None:
    path = tmp_path / "empty.zip"
    path.write_bytes(b"PK\x05\x06" + bytes(18))
    report = unsafe_report(path)
    assert report.container == "zip" and report.verdict == "no-pickles" and not report.notes


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    html = cli(str(TESTDATA / "torch" / "cnn_bn.pth"), "--unsafe-report", "-f", "html")
    assert html.returncode == 2 and "table or json" in html.stderr
    missing = cli(str(tmp_path / "nothing.pt"), "--unsafe-report")
    assert missing.returncode == 2 and "no such file" in missing.stderr
