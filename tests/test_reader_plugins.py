"""Third-party readers plug in through the ``ckptdiff.readers`` entry-point group."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

PLUGIN = '''
from pathlib import Path
from typing import ClassVar

from ckptdiff.manifest import Manifest, TensorInfo


class FakeReader:
    name: ClassVar[str] = "fake"
    extensions: ClassVar[tuple[str, ...]] = (".fake",)
    description: ClassVar[str] = "a test format: FAKE magic, one line per tensor"
    requires: ClassVar[tuple[str, ...]] = ()
    extra: ClassVar[str | None] = None

    def sniff(self, head: bytes, path: Path) -> bool:
        return head.startswith(b"FAKE\\n")

    def read(self, path: Path, key: str | None = None) -> Manifest:
        lines = path.read_text().splitlines()[1:]
        tensors = tuple(TensorInfo(key=line, shape=(2,), dtype="float32") for line in lines)
        return Manifest(path=str(path), format=self.name, tensors=tensors,
                        metadata={"bytes_read": path.stat().st_size})
'''


def _install(site: Path) -> None:
    (site / "fakeplugin.py").write_text(PLUGIN)
    info = site / "fakeplugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fakeplugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent("""
        [ckptdiff.readers]
        fake = fakeplugin:FakeReader
        broken = fakeplugin_missing:Nothing
    """))


def _run(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=f"{site}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
               COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "ckptdiff", *args], capture_output=True,
                          text=True, env=env)


def test_plugin_reads_its_format_and_broken_plugin_only_warns(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    _install(site)
    sample = tmp_path / "x.fake"
    sample.write_text("FAKE\nencoder.weight\nhead.bias\n")
    result = _run(site, "inspect", str(sample), "--format", "json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["format"] == "fake"
    assert [t["key"] for t in document["tensors"]] == ["encoder.weight", "head.bias"]
    assert "skipping reader plugin 'broken'" in result.stderr
    listing = _run(site, "formats")
    assert listing.returncode == 0
    assert "fake" in listing.stdout and "plugin:fake" in listing.stdout


def test_builtin_formats_do_not_scan_plugins(tmp_path: Path) -> None:
    # A broken plugin is only discovered when no built-in reader claims the file.
    site = tmp_path / "site"
    site.mkdir()
    _install(site)
    snapshot = tmp_path / "m.manifest.json"
    snapshot.write_text(json.dumps({"schema": "ckptdiff.manifest/1", "path": "m", "format": "x",
                                    "container_key": None, "tensors": [], "metadata": {}}))
    result = _run(site, "inspect", str(snapshot), "--format", "json")
    assert result.returncode == 0, result.stderr
    assert "skipping reader plugin" not in result.stderr
