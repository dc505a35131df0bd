"""torch.distributed.checkpoint directories: written by ``dcp.save`` in one process, compared to
what ``torch.load`` of the same checkpoint says; sharded metadata; hostile and damaged input."""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import ckptdiff.readers as registry
from ckptdiff.api import diff
from ckptdiff.errors import CkptdiffError, CorruptFileError, UnsafeContentError

torch = pytest.importorskip("torch", reason="torch is not installed")
dcp = pytest.importorskip("torch.distributed.checkpoint", reason="torch.distributed is missing")


def _model() -> Any:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3),
                               torch.nn.Linear(3, 2).to(torch.bfloat16))


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """DCP checkpoints of a model with its Adam state, and of a plain state dict, plus the same
    converted to torch.save files by torch's own dcp_to_torch_save."""
    from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

    base = tmp_path_factory.mktemp("dcp")
    model = _model()
    optimizer = torch.optim.Adam(model[:2].parameters())
    model[:2](torch.randn(5, 4)).sum().backward()
    optimizer.step()
    paths = {"full": base / "full", "plain": base / "plain"}
    dcp.save({"model": model.state_dict(), "optim": optimizer.state_dict(), "step": 7},
             checkpoint_id=str(paths["full"]))
    dcp.save(model.state_dict(), checkpoint_id=str(paths["plain"]))
    for name in ("full", "plain"):
        paths[f"{name}.pt"] = base / f"{name}.pt"
        dcp_to_torch_save(str(paths[name]), str(paths[f"{name}.pt"]))
    return paths


def _loaded(path: Path) -> dict[str, Any]:
    """Flattened (key -> tensor) of what torch.load gives back, DCP's way: nested dicts by '.'."""
    flat: dict[str, Any] = {}

    def walk(value: Any, prefix: str) -> None:
        if isinstance(value, torch.Tensor):
            flat[prefix] = value
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{prefix}.{key}" if prefix else str(key))

    walk(torch.load(path, weights_only=True), "")
    return flat


def test_model_and_optimizer_match_torch_load(saved: dict[str, Path]) -> None:
    manifest = registry.read(saved["full"])
    expected = _loaded(saved["full.pt"])
    assert manifest.format == "torch-dcp"
    assert manifest.container_key == "model"
    found = {("model." + t.key if t.kind != "optimizer_slot" else t.key): t
             for t in manifest.tensors}
    assert set(found) == set(expected)
    for key, tensor in expected.items():
        info = found[key]
        assert info.shape == tuple(tensor.shape), key
        assert info.dtype == str(tensor.dtype).removeprefix("torch."), key
        assert info.nbytes == tensor.numel() * tensor.element_size(), key
        assert info.storage == "__0_0.distcp"
    kinds = {t.key: t.kind for t in manifest.tensors}
    assert kinds["1.running_mean"] == "buffer" and kinds["0.weight"] == "parameter"
    assert kinds["optim.state.0.exp_avg"] == "optimizer_slot"
    meta = manifest.metadata
    assert meta["storage_files"] == ["__0_0.distcp"]
    # .metadata, and the headers of each range DCP's load reads (one per chunk and per
    # non-tensor value: each a torch.save archive): its first 4 and last 22 bytes, and for a
    # chunk the archive's central directory, records and data.pkl
    ranges = meta["chunks"] + meta["non_tensor_entries"]
    size = (saved["full"] / ".metadata").stat().st_size
    assert meta["non_tensor_entries"] > 0
    assert size + 26 * ranges < meta["bytes_read"] < size + 1_500 * ranges
    json.dumps(meta)


def test_chunk_archives_are_read_by_their_headers(tmp_path: Path) -> None:
    import torch.distributed.checkpoint as dcp

    dcp.save({"w": torch.zeros(1024, 1024)}, checkpoint_id=str(tmp_path / "big"))
    manifest = registry.read(tmp_path / "big")
    assert [(t.key, t.shape) for t in manifest.tensors] == [("w", (1024, 1024))]
    size = (tmp_path / "big" / ".metadata").stat().st_size
    assert manifest.metadata["bytes_read"] < size + 4_096  # of a 4 MiB storage file


def test_plain_state_dict_keys_are_flat(saved: dict[str, Path]) -> None:
    manifest = registry.read(saved["plain"])
    expected = _loaded(saved["plain.pt"])
    assert manifest.container_key is None
    assert [(t.key, t.shape) for t in manifest.tensors] == [
        (k, tuple(v.shape)) for k, v in expected.items()]
    assert {t.key: t.dtype for t in manifest.tensors}["2.weight"] == "bfloat16"


def test_key_picks_a_container_and_paths_inside_work(saved: dict[str, Path]) -> None:
    optim = registry.read(saved["full"], "optim")
    assert optim.container_key == "optim" and all(
        t.kind == "optimizer_slot" for t in optim.tensors)
    whole = registry.read(saved["full"])
    assert registry.read(saved["full"] / ".metadata").tensors == whole.tensors


def test_diff_against_the_live_model(saved: dict[str, Path]) -> None:
    report = diff(saved["full"], _model())
    assert report.compatible, report.findings
    assert not [f for f in report.findings if f.severity == "error"]
    wrong = torch.nn.Sequential(torch.nn.Linear(4, 5))
    assert not diff(saved["plain"], wrong).compatible


def _write_sharded(folder: Path) -> int:
    """A .metadata as two ranks would write it for a row-sharded weight, built from torch's
    own metadata classes; each storage file is the torch.save archive of one rank's chunk (as
    DCP writes it). The length of each file."""
    import io

    from torch.distributed.checkpoint.filesystem import _StorageInfo
    from torch.distributed.checkpoint.metadata import (
        ChunkStorageMetadata,
        Metadata,
        MetadataIndex,
        TensorProperties,
        TensorStorageMetadata,
    )

    folder.mkdir()
    buffer = io.BytesIO()
    torch.save(torch.zeros(4, 8, dtype=torch.float16), buffer)
    size = len(buffer.getvalue())
    props = TensorProperties(dtype=torch.float16)
    chunks = [ChunkStorageMetadata(torch.Size([0, 0]), torch.Size([4, 8])),
              ChunkStorageMetadata(torch.Size([4, 0]), torch.Size([4, 8]))]
    meta = Metadata(
        state_dict_metadata={"w": TensorStorageMetadata(props, torch.Size([8, 8]), chunks)},
        planner_data={"w": ("w",)},
        storage_data={
            MetadataIndex("w", torch.Size([0, 0]), 0): _StorageInfo("__0_0.distcp", 0, size),
            MetadataIndex("w", torch.Size([4, 0]), 0): _StorageInfo("__1_0.distcp", 0, size)})
    (folder / ".metadata").write_bytes(pickle.dumps(meta))
    for name in ("__0_0.distcp", "__1_0.distcp"):
        (folder / name).write_bytes(buffer.getvalue())
    return size


def test_sharded_tensor_reports_its_chunks(tmp_path: Path) -> None:
    size = _write_sharded(tmp_path / "ckpt")
    manifest = registry.read(tmp_path / "ckpt")
    (tensor,) = manifest.tensors
    assert (tensor.key, tensor.shape, tensor.dtype, tensor.storage) == ("w", (8, 8), "float16",
                                                                         None)
    assert manifest.metadata["storage_files"] == ["__0_0.distcp", "__1_0.distcp"]
    assert manifest.metadata["sharded_tensors"]["w"] == [
        {"offsets": [0, 0], "sizes": [4, 8], "file": "__0_0.distcp"},
        {"offsets": [4, 0], "sizes": [4, 8], "file": "__1_0.distcp"}]
    (tmp_path / "ckpt" / "__1_0.distcp").write_bytes(b"x" * 10)
    with pytest.raises(CorruptFileError, match=r"__1_0\.distcp is 10 bytes but .metadata "
                                               rf"needs {size:,}: truncated copy\?"):
        registry.read(tmp_path / "ckpt")
    (tmp_path / "ckpt" / "__1_0.distcp").unlink()
    with pytest.raises(CorruptFileError, match="missing"):
        registry.read(tmp_path / "ckpt")


def test_hostile_metadata_is_refused_and_nothing_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"

    class Exploit:
        def __reduce__(self) -> tuple[Any, tuple[str]]:
            import os

            return os.system, (f"touch {marker}",)

    folder = tmp_path / "evil"
    folder.mkdir()
    (folder / ".metadata").write_bytes(pickle.dumps({"state_dict_metadata": Exploit()}))
    with pytest.raises(UnsafeContentError, match=r"(posix|os|nt)\.system"):
        registry.read(folder)
    assert not marker.exists()


def test_damaged_metadata_is_a_clear_error(saved: dict[str, Path], tmp_path: Path) -> None:
    folder = tmp_path / "broken"
    shutil.copytree(saved["full"], folder)
    data = (saved["full"] / ".metadata").read_bytes()
    for cut in (1, 2, len(data) // 2, len(data) - 1):
        (folder / ".metadata").write_bytes(data[:cut])
        with pytest.raises(CkptdiffError):
            registry.read(folder)
    (folder / ".metadata").write_bytes(pickle.dumps({"not": "metadata"}))
    with pytest.raises(CorruptFileError, match="does not hold"):
        registry.read(folder)
    (folder / "__0_0.distcp").unlink()
    (folder / ".metadata").write_bytes(data)
    with pytest.raises(CorruptFileError, match="incomplete copy"):
        registry.read(folder)


def test_reading_imports_no_framework(saved: dict[str, Path]) -> None:
    code = ("import sys, json\nimport ckptdiff.readers as r\n"
            f"r.read({str(saved['full'])!r})\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'torch')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_remote_dcp_directory(saved: dict[str, Path]) -> None:
    fsspec = pytest.importorskip("fsspec", reason="fsspec is not installed")
    fs = fsspec.filesystem("memory")
    for file in saved["full"].iterdir():
        fs.pipe_file(f"/dcp-test/full/{file.name}", file.read_bytes())
    try:
        remote = registry.read("memory://dcp-test/full")
        assert remote.tensors == registry.read(saved["full"]).tensors
    finally:
        fs.rm("/dcp-test", recursive=True)
