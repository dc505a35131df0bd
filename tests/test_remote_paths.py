"""RemotePath and the block store on fsspec's in-memory filesystem (no server needed): path
methods, ranged reads counted once, clear errors, and no fsspec import for local paths."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

import ckptdiff.readers as registry
from ckptdiff.errors import CkptdiffError, MissingDependencyError
from ckptdiff.readers.base import CountingFile, is_within
from ckptdiff.sources.remote import RemotePath, has_protocol
from ckptdiff.sources.remote_file import BLOCK_SIZE, BlockStore, RemoteFile, RemoteReadError

fsspec = pytest.importorskip("fsspec", reason="fsspec is not installed")
TESTDATA = Path(__file__).resolve().parent.parent / "testdata" / "readers"


@pytest.fixture()
def memfs() -> Iterator[Any]:
    """The in-memory filesystem with the safetensors fixtures under /ckpt/."""
    fs = fsspec.filesystem("memory")
    for local in (TESTDATA / "safetensors").rglob("*"):
        if local.is_file():
            fs.pipe_file(f"/ckpt/{local.relative_to(TESTDATA / 'safetensors')}",
                         local.read_bytes())
    yield fs
    fs.rm("/ckpt", recursive=True)


@pytest.mark.parametrize(("text", "remote"), [
    ("s3://bucket/key", True), ("gs://b/k", True), ("https://host/x.safetensors", True),
    ("simplecache::s3://b/k", True), ("C:\\models\\x.pth", False), ("c:/models/x.pth", False),
    ("file:///tmp/x", False), ("model.safetensors", False), ("hf:org/name", False),
    ("pkg.module:build", False)])
def test_which_paths_are_urls(text: str, remote: bool) -> None:
    assert has_protocol(text) is remote


def test_path_methods(memfs: Any) -> None:
    root = RemotePath.from_url("memory://ckpt/sharded")
    index = root / "model.safetensors.index.json"
    assert str(index) == "memory:///ckpt/sharded/model.safetensors.index.json"
    assert index.name == "model.safetensors.index.json" and index.suffix == ".json"
    assert index.parent == root and index.with_name("x") == root / "x"
    assert root.is_dir() and not root.is_file() and index.is_file() and index.exists()
    assert not (root / "missing").exists() and not index.is_symlink()
    assert [p.name for p in root.iterdir()] == sorted(p.name for p in
                                                      (TESTDATA / "safetensors" / "sharded")
                                                      .iterdir())
    assert [p.name for p in root.glob("*.json")][0] == "model.safetensors.index.json"
    assert index.stat().st_size == (TESTDATA / "safetensors" / "sharded" /
                                    "model.safetensors.index.json").stat().st_size
    assert index.is_relative_to(root) and not root.is_relative_to(index)
    assert index.relative_to(root.parent) == PurePosixPath("sharded/model.safetensors.index.json")
    assert root in index.parents and index.resolve() is index
    assert is_within(index, root) and not is_within(index, Path("/ckpt"))
    assert root.joinpath("a", PurePosixPath("b/c")).path.endswith("sharded/a/b/c")


def test_reads_match_local_and_count_fetched_blocks(memfs: Any) -> None:
    for case in ("tiny.safetensors", "single_dir", "sharded", "pytorch_model.bin"):
        remote = registry.read(f"memory://ckpt/{case}")
        local = registry.read(TESTDATA / "safetensors" / case)
        assert remote.tensors == local.tensors and remote.format == local.format
        assert remote.path.startswith("memory://")


def test_block_store_fetches_each_block_once() -> None:
    data = bytes(range(256)) * (3 * BLOCK_SIZE // 256 + 7)
    calls: list[tuple[int, int]] = []

    def fetch(start: int, end: int) -> bytes:
        calls.append((start, end))
        return data[start:end]

    fetched: list[int] = []
    store = BlockStore(fetch, len(data), "mem://x", fetched.append)
    file = RemoteFile(store)
    assert file.read(8) == data[:8]
    file.seek(-10, 2)
    assert file.read() == data[-10:]
    file.seek(5)
    assert file.read(BLOCK_SIZE * 2) == data[5:5 + BLOCK_SIZE * 2]  # blocks 0, 1 and 2
    assert calls == [(0, BLOCK_SIZE), (3 * BLOCK_SIZE, len(data)), (BLOCK_SIZE, 3 * BLOCK_SIZE)]
    assert store.fetched == sum(fetched) == len(data)
    second = RemoteFile(store)  # another open of the same file fetches nothing more
    buffer = bytearray(100)
    assert second.readinto(buffer) == 100 and bytes(buffer) == data[:100]
    assert len(calls) == 3 and file.seekable() and file.tell() == 5 + 2 * BLOCK_SIZE
    with pytest.raises(ValueError):
        file.seek(-1)


def test_short_or_failing_fetch_is_an_os_error() -> None:
    store = BlockStore(lambda start, end: b"x", 100, "mem://x")
    with pytest.raises(RemoteReadError, match="did the file change"):
        store.read(0, 10)

    def broken(start: int, end: int) -> bytes:
        raise RuntimeError("connection reset")

    with pytest.raises(OSError, match="mem://y: cannot read bytes 0-100: RuntimeError"):
        BlockStore(broken, 100, "mem://y").read(0, 1)


def test_counting_file_reports_fetched_bytes(memfs: Any) -> None:
    memfs.pipe_file("/ckpt/big.bin", b"\0" * (10 * BLOCK_SIZE))
    with CountingFile(RemotePath.from_url("memory://ckpt/big.bin")) as handle:
        assert handle.size == 10 * BLOCK_SIZE
        handle.seek(3 * BLOCK_SIZE + 1)
        assert handle.read(4) == b"\0" * 4
        assert handle.bytes_read == BLOCK_SIZE


def test_clear_errors(memfs: Any) -> None:
    with pytest.raises(CkptdiffError, match=r"^memory:///ckpt/none\.pth: no such file"):
        registry.read("memory://ckpt/none.pth")
    memfs.mkdir("/ckpt/empty")
    memfs.pipe_file("/ckpt/empty/.keep", b"")
    with pytest.raises(CkptdiffError):
        registry.read("memory://ckpt/empty")
    with pytest.raises(CkptdiffError, match="fsspec cannot open nosuchproto:// paths"):
        registry.read("nosuchproto://x/y")


def test_missing_protocol_package_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from fsspec.registry import known_implementations

    spec = {"class": "ckptdiff_missing_fs.FS", "err": "Install ckptdiff_missing_fs"}
    monkeypatch.setitem(known_implementations, "zzz", spec)
    with pytest.raises(MissingDependencyError) as caught:
        registry.read("zzz://bucket/model.safetensors")
    assert str(caught.value) == ("zzz:// paths need ckptdiff_missing_fs: "
                                 "pip install ckptdiff_missing_fs")


def test_local_reads_never_import_fsspec() -> None:
    code = ("import sys, json\nimport ckptdiff.readers as r\nfrom ckptdiff.api import read\n"
            f"r.read({str(TESTDATA / 'safetensors' / 'sharded')!r})\n"
            f"read({str(TESTDATA / 'torch' / 'cnn_bn.pth')!r})\n"
            f"read('file://' + {str(TESTDATA / 'safetensors' / 'tiny.safetensors')!r})\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('fsspec', 's3fs', 'aiohttp', 'rich'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
