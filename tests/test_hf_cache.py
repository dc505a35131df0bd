"""``hf:org/name[@revision]`` against a fake Hugging Face cache laid out exactly like the real one:
``refs/<branch>`` holding a commit hash, ``snapshots/<hash>/`` of symlinks into ``blobs/``."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import ckptdiff.readers as registry
from ckptdiff.api import read, resolve
from ckptdiff.errors import CkptdiffError, UsageError
from ckptdiff.sources import hf_cache

SAFETENSORS = Path(__file__).resolve().parent.parent / "testdata" / "readers" / "safetensors"
TORCH = Path(__file__).resolve().parent.parent / "testdata" / "readers" / "torch"
TORCH_SHARDED = (Path(__file__).resolve().parent.parent / "testdata" / "readers" /
                 "torch_sharded" / "model")
OLD = "0" * 39 + "1"
NEW = "ab" * 20


def _add_snapshot(repo: Path, commit: str, files: dict[str, Path]) -> None:
    """Put ``files`` (repo name -> local file) in snapshots/<commit>/ as symlinks to blobs."""
    snapshot = repo / "snapshots" / commit
    for name, source in files.items():
        data = source.read_bytes()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = snapshot / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))


def _set_ref(repo: Path, ref: str, commit: str) -> None:
    path = repo / "refs" / ref
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(commit)


@pytest.fixture()
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache with a sharded model (main: sharded; an older commit: one file) and a torch one."""
    cache = tmp_path / "hf" / "hub"
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    sharded = cache / "models--acme--tiny"
    _add_snapshot(sharded, NEW, {
        name: SAFETENSORS / "sharded" / name
        for name in ("model.safetensors.index.json", "model-00001-of-00002.safetensors",
                     "model-00002-of-00002.safetensors")})
    _add_snapshot(sharded, NEW, {"config.json": SAFETENSORS / "cases.json"})
    _add_snapshot(sharded, OLD, {"model.safetensors": SAFETENSORS / "tiny.safetensors"})
    _set_ref(sharded, "main", NEW)
    _set_ref(sharded, "v1", OLD)
    torch_repo = cache / "models--gpt9"
    _add_snapshot(torch_repo, OLD, {"pytorch_model.bin": TORCH / "cnn_bn.pth",
                                    "tf_model.h5": SAFETENSORS / "tiny.safetensors"})
    _set_ref(torch_repo, "main", OLD)
    return cache


def test_main_branch_picks_the_sharded_index(hub: Path) -> None:
    manifest = registry.read("hf:acme/tiny")
    local = registry.read(SAFETENSORS / "sharded")
    assert manifest.format == "safetensors-sharded"
    assert manifest.path == "hf:acme/tiny"
    assert manifest.tensors == local.tensors


def _shapes(spec: str | Path) -> list[tuple[str, tuple[int, ...], str]]:
    return [(t.key, t.shape, t.dtype) for t in registry.read(spec).tensors]


def test_revision_by_branch_and_by_hash(hub: Path) -> None:
    expected = _shapes(SAFETENSORS / "tiny.safetensors")
    assert _shapes("hf:acme/tiny@v1") == expected
    assert registry.read("hf:acme/tiny@v1").tensors[0].storage == "model.safetensors"
    assert _shapes(f"hf:acme/tiny@{OLD}") == expected
    assert _shapes(f"hf:acme/tiny@{OLD[:10]}") == expected
    assert registry.read(f"hf:acme/tiny@{NEW}").format == "safetensors-sharded"


def test_torch_bin_before_tf_and_repo_without_org(hub: Path) -> None:
    manifest = read("hf:gpt9")  # api.read, and not taken for a model spec
    assert manifest.format == "torch-zip"
    assert resolve("hf:gpt9").tensors == manifest.tensors


def test_sharded_torch_bin_index(hub: Path) -> None:
    repo = hub / "models--acme--old"
    _add_snapshot(repo, NEW, {p.name: p for p in TORCH_SHARDED.iterdir()})
    _set_ref(repo, "main", NEW)
    manifest = read("hf:acme/old")
    assert manifest.format == "torch-sharded" and manifest.path == "hf:acme/old"
    assert [t.key for t in manifest.tensors] == ["0.weight", "0.bias", "1.weight", "1.bias"]
    assert registry.read(TORCH_SHARDED).tensors == manifest.tensors


def test_precedence_follows_from_pretrained() -> None:
    assert hf_cache.WEIGHT_FILES == ("model.safetensors.index.json", "model.safetensors",
                                     "pytorch_model.bin.index.json", "pytorch_model.bin",
                                     "tf_model.h5")


def test_missing_model_lists_the_cache(hub: Path) -> None:
    with pytest.raises(CkptdiffError) as caught:
        registry.read("hf:acme/huge")
    message = str(caught.value)
    assert message.startswith("hf:acme/huge: acme/huge is not in the Hugging Face cache")
    assert "acme/tiny, gpt9" in message and "never downloads" in message
    assert "\n" not in message


def test_missing_revision_lists_refs_and_snapshots(hub: Path) -> None:
    with pytest.raises(CkptdiffError, match=r"revision 'v2' is not in the cache \(cached refs: "
                                            r"main, v1; snapshots: 000000000000, ababababab"):
        registry.read("hf:acme/tiny@v2")


def test_snapshot_without_weights_says_what_it_holds(hub: Path) -> None:
    repo = hub / "models--acme--tiny"
    _add_snapshot(repo, "c" * 40, {"config.json": SAFETENSORS / "cases.json"})
    _set_ref(repo, "docs", "c" * 40)
    with pytest.raises(CkptdiffError, match=r"no weights in the cached snapshot cccccccccccc .*"
                                            r"it holds config\.json\)$"):
        registry.read("hf:acme/tiny@docs")


def test_interrupted_download(hub: Path) -> None:
    repo = hub / "models--acme--tiny"
    shutil.rmtree(repo / "blobs")
    with pytest.raises(CkptdiffError, match="blob is missing"):
        registry.read("hf:acme/tiny")
    _set_ref(repo, "gone", "d" * 40)
    with pytest.raises(CkptdiffError, match="not in the cache"):
        registry.read("hf:acme/tiny@gone")


@pytest.mark.parametrize("spec", ["hf:", "hf:a/b/c", "hf:acme/tiny@", "hf:../x"])
def test_malformed_specs(spec: str) -> None:
    with pytest.raises(UsageError):
        hf_cache.parse_spec(spec)


def test_cache_location_follows_the_environment(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert hf_cache.cache_dir() == tmp_path / ".cache" / "huggingface" / "hub"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert hf_cache.cache_dir() == tmp_path / "xdg" / "huggingface" / "hub"
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    assert hf_cache.cache_dir() == tmp_path / "home" / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    assert hf_cache.cache_dir() == tmp_path / "hub"


def test_no_network_library_is_imported(hub: Path) -> None:
    code = ("import sys, json\nimport ckptdiff.readers as r\nr.read('hf:acme/tiny')\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('huggingface_hub', 'fsspec', 'requests', 'urllib3', 'aiohttp'))))")
    env = {**os.environ, "HF_HUB_CACHE": str(hub)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


# The torch-sharded reader, which hf: models with only sharded .bin weights resolve to.

def _sharded_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "bin"
    shutil.copytree(TORCH_SHARDED, folder)
    return folder


def test_sharded_torch_index_and_shards_must_agree(tmp_path: Path) -> None:
    folder = _sharded_copy(tmp_path)
    index = folder / "pytorch_model.bin.index.json"
    document = json.loads(index.read_text())
    document["weight_map"]["0.bias"] = "pytorch_model-00002-of-00002.bin"
    index.write_text(json.dumps(document))
    with pytest.raises(CkptdiffError, match="the index and its shards disagree"):
        registry.read(folder)
    document["weight_map"]["0.bias"] = "../outside.bin"
    index.write_text(json.dumps(document))
    with pytest.raises(CkptdiffError, match="refused shard name"):
        registry.read(index)


def test_sharded_torch_missing_or_foreign_shard(tmp_path: Path) -> None:
    folder = _sharded_copy(tmp_path)
    (folder / "pytorch_model-00002-of-00002.bin").unlink()
    with pytest.raises(CkptdiffError, match="missing"):
        registry.read(folder)
    (folder / "pytorch_model-00002-of-00002.bin").write_bytes(b"not a pickle at all")
    with pytest.raises(CkptdiffError, match="is not a torch.save file"):
        registry.read(folder)
    with pytest.raises(UsageError):
        registry.read(folder, "state_dict")
