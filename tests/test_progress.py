"""The progress bar: shown only for slow reads on a terminal, never with --quiet or in pipes, and
rich stays out of the JSON path when there is no terminal."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from ckptdiff.sources import progress

TESTDATA = Path(__file__).resolve().parent.parent / "testdata" / "readers"


class _Display:
    """Records what the reporter asks of rich's Progress."""

    def __init__(self) -> None:
        self.updates: list[dict[str, object]] = []
        self.stopped = False

    def update(self, task: object, **fields: object) -> None:
        self.updates.append(fields)

    def stop(self) -> None:
        self.stopped = True


def test_hooks_do_nothing_outside_a_reporting_block() -> None:
    progress.note_file("x.safetensors")
    progress.note_bytes(10)
    progress.note_step(1, 2, "shard")
    assert progress._active is None


def test_nothing_is_shown_before_the_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[bool] = []
    monkeypatch.setattr(progress._Reporter, "_start", lambda self: started.append(True))
    with progress.reporting("ckpt", enabled=True, delay=3600):
        progress.note_file("a.safetensors")
        progress.note_bytes(65536)
    assert started == []


def test_a_slow_read_shows_files_bytes_and_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    display = _Display()

    def start(self: progress._Reporter) -> None:
        self._display, self._task = display, 0

    monkeypatch.setattr(progress._Reporter, "_start", start)
    with progress.reporting("s3://b/ckpt", enabled=True, delay=0):
        progress.note_file("model-00001-of-00002.safetensors")
        progress.note_bytes(2_500_000)
        progress.note_file("model-00002-of-00002.safetensors")
        progress.note_step(1, 2, "model-00002-of-00002.safetensors")
    last = display.updates[-1]
    assert last["description"] == ("s3://b/ckpt · model-00002-of-00002.safetensors · 2 files · "
                                   "2.5 MB fetched")
    assert (last["completed"], last["total"]) == (1, 2)
    assert display.stopped and progress._active is None


def test_disabled_reporting_records_nothing() -> None:
    with progress.reporting("x", enabled=False):
        progress.note_file("a")
        assert progress._active is None


def test_real_rich_bar_goes_to_stderr_and_is_removed(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("rich")
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    with progress.reporting("ckpt", enabled=True, delay=0):
        progress.note_step(0, 3, "__0_0.distcp")
        progress.note_step(2, 3, "__2_0.distcp")
    assert progress._active is None


def test_verbose_summaries() -> None:
    import ckptdiff.readers as registry

    manifest = registry.read(TESTDATA / "safetensors" / "tiny.safetensors")
    lines = progress.read_summaries((manifest, object()), 0.25)
    assert lines[0].startswith("read ") and "(safetensors)" in lines[0]
    assert f"{manifest.metadata['bytes_read']:,} bytes read" in lines[0]
    assert lines[-1] == "reading took 0.25 s"
    assert progress.read_summaries(object(), 1.0) == []


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    code = ("import sys\nfrom ckptdiff.cli.app import app\n"
            "try:\n    app(sys.argv[1:])\nexcept SystemExit as e:\n    code = e.code\n"
            "print('RICH', 'rich.progress' in sys.modules, 'rich.live' in sys.modules)\n")
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)


def test_cli_verbose_and_quiet_without_a_terminal() -> None:
    path = str(TESTDATA / "dcp" / "model_optim")
    out = _cli("inspect", path, "--format", "json", "--verbose")
    assert json.loads(out.stdout[:out.stdout.rindex("}") + 1])["format"] == "torch-dcp"
    assert "bytes read" in out.stderr and "reading took" in out.stderr
    assert out.stdout.strip().endswith("RICH False False")  # no terminal: no bar, no rich import
    quiet = _cli("inspect", path, "-f", "json", "-q")
    assert quiet.stderr == ""
    both = _cli("diff", path, path, "--quiet", "-v")
    assert both.stderr.count("bytes read") == 2
