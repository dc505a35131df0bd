"""Hostile HDF5, Keras, TensorFlow and safetensors inputs, links out of the checkpoint, Git LFS
pointers and empty files (see :mod:`tests.hostile.files` for :class:`Case`)."""

from __future__ import annotations

import json
import shutil
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.hostile import zips
from tests.hostile.files import Case

from ckptdiff.errors import CkptdiffError, CorruptFileError, UnsafeContentError

TESTDATA = Path(__file__).resolve().parents[2] / "testdata" / "readers"
LFS = (b"version https://git-lfs.github.com/spec/v1\noid sha256:" + b"0" * 64
       + b"\nsize 1048576\n")


def copy(fixture: str, then: Callable[[Path], Path]) -> Callable[[Path], Path]:
    """Copy ``testdata/readers/<fixture>`` into the case folder, then damage it."""
    def build(folder: Path) -> Path:
        source = TESTDATA / fixture
        target = folder / source.name
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("*.golden.json"))
        else:
            shutil.copyfile(source, target)
        return then(target)
    return build


def _keras3(path: Path, make: Callable[[Any, Any], None]) -> Path:
    import h5py
    import numpy as np

    with h5py.File(path, "w") as handle:
        handle.create_group("vars").attrs["name"] = "model"
        dense = handle.create_group("layers/dense/vars")
        dense.attrs["name"] = "fc"
        dense["1"] = np.zeros((2,), dtype="float32")
        make(handle, dense)
    return path


def h5(make: Callable[[Any, Any], None]) -> Callable[[Path], Path]:
    return lambda folder: _keras3(folder / "model.weights.h5", make)


def _external_link(handle: Any, dense: Any) -> None:
    import h5py

    dense["0"] = h5py.ExternalLink("/etc/passwd", "/data")


def _soft_link(handle: Any, dense: Any) -> None:
    import h5py

    dense["0"] = h5py.SoftLink("/vars")


def _virtual(handle: Any, dense: Any) -> None:
    import h5py

    layout = h5py.VirtualLayout(shape=(4,), dtype="float32")
    layout[:] = h5py.VirtualSource("/etc/passwd", "data", shape=(4,))
    dense.create_virtual_dataset("0", layout)


def _external_raw(handle: Any, dense: Any) -> None:
    dense.create_dataset("0", shape=(4,), dtype="float32", external=[("/etc/passwd", 0, 16)])


def _absurd_shape(handle: Any, dense: Any) -> None:
    dense.create_dataset("0", shape=(2**40, 2**40), dtype="float32", chunks=(1, 1))


def _deep(handle: Any, dense: Any) -> None:
    dense.create_dataset("0", shape=(1,), dtype="float32")  # vars 0..n-1, as Keras reads them
    group = handle
    for level in range(80):
        group = group.create_group(f"g{level}")
    group.create_group("vars").create_dataset("0", shape=(1,), dtype="float32")


def _keras_zip(folder: Path, config: bytes, weights: bytes, method: int) -> Path:
    path = folder / "model.keras"
    with zipfile.ZipFile(path, "w", method) as archive:
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.0.0"}))
        archive.writestr("config.json", config, compresslevel=9)
        archive.writestr("model.weights.h5", weights, compresslevel=9)
    return path


def _keras_bomb(folder: Path, member: str) -> Path:
    with zipfile.ZipFile(TESTDATA / "keras" / "model.keras") as archive:
        config, weights = archive.read("config.json"), archive.read("model.weights.h5")
    if member == "config.json":
        config = config + b" " * 30_000_000
    else:
        weights = weights + bytes(30_000_000)
    return _keras_zip(folder, config, weights, zipfile.ZIP_DEFLATED)


def _state_file_outside(folder: Path) -> Path:
    elsewhere = folder / "elsewhere"
    shutil.copytree(TESTDATA / "tf" / "tf2_keras", elsewhere,
                    ignore=shutil.ignore_patterns("*.golden.json"))
    mine = folder / "mine"
    mine.mkdir()
    (mine / "checkpoint").write_text(f'model_checkpoint_path: "{elsewhere / "ckpt-1"}"\n')
    return mine


def _symlinked(fixture: str, inside: str) -> Callable[[Path], Path]:
    """Copy ``fixture``; move its file ``inside`` out of the folder and leave a symlink."""
    def then(target: Path) -> Path:
        victim = target / inside
        outside = target.parent / f"outside-{victim.name}"
        victim.rename(outside)
        victim.symlink_to(outside)
        return target
    return copy(fixture, then)


def _replace(inside: str, data: bytes) -> Callable[[Path], Path]:
    def then(target: Path) -> Path:
        (target / inside if inside else target).write_bytes(data)
        return target
    return then


def _index_footer_lies(target: Path) -> Path:
    index = target / "ckpt-1.index"
    data = bytearray(index.read_bytes())
    # Footer: metaindex handle, index handle (varint offset, size), padding, magic.
    handles = b"\x00\x00" + b"\x00" + b"\x80\x80\x80\x80\x80\x20"
    data[-48:-48 + len(handles)] = handles
    index.write_bytes(bytes(data))
    return target


def _safetensors(header: dict[str, Any] | bytes, data: bytes = b"") -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        text = header if isinstance(header, bytes) else json.dumps(header).encode()
        path = folder / "model.safetensors"
        path.write_bytes(struct.pack("<Q", len(text)) + text + data)
        return path
    return build


def _index_names(shard: str) -> Callable[[Path], Path]:
    def then(target: Path) -> Path:
        index = target / "model.safetensors.index.json"
        document = json.loads(index.read_text())
        document["weight_map"]["embed.weight"] = shard
        index.write_text(json.dumps(document))
        return target
    return then


def _raw_header(length: int) -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        path = folder / "model.safetensors"
        path.write_bytes(struct.pack("<Q", length) + b'{"a": 1}')
        return path
    return build


def _add_member(target: Path, name: str) -> Path:
    with zipfile.ZipFile(target, "a") as archive:
        archive.writestr(name, b"print('hi')")
    return target


F32 = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
OTHER_CASES = [
    Case("h5-external-link", h5(_external_link), UnsafeContentError, "external link", "h5py"),
    Case("h5-soft-link", h5(_soft_link), CorruptFileError, "SoftLink", "h5py"),
    Case("h5-virtual-dataset", h5(_virtual), UnsafeContentError, "virtual dataset", "h5py"),
    Case("h5-external-raw-data", h5(_external_raw), UnsafeContentError, "external files",
         "h5py"),
    # Keras 3.15 refuses it too (saving_lib: declared bytes far beyond what is stored).
    Case("h5-absurd-shape", h5(_absurd_shape), CorruptFileError, "shape bomb", "h5py"),
    Case("h5-groups-80-deep", h5(_deep), CorruptFileError, "nested deeper", "h5py"),
    Case("keras-config-bomb", lambda f: _keras_bomb(f, "config.json"), CorruptFileError,
         "zip bomb", "h5py"),
    Case("keras-weights-bomb", lambda f: _keras_bomb(f, "model.weights.h5"), CorruptFileError,
         "zip bomb", "h5py"),
    Case("keras-dotdot-member", copy("keras/model.keras", lambda t: _add_member(
        t, "../../x.py")), CorruptFileError, r"'\.\.'", "h5py"),
    Case("tf-state-file-points-outside", _state_file_outside, CorruptFileError,
         "outside the checkpoint's folder"),
    Case("tf-index-symlink-outside", _symlinked("tf/tf2_keras", "ckpt-1.index"),
         CorruptFileError, "outside the checkpoint's folder"),
    Case("tf-shard-symlink-outside", _symlinked("tf/tf2_keras", "ckpt-1.data-00000-of-00001"),
         CorruptFileError, "outside the checkpoint's folder"),
    Case("savedmodel-pb-symlink-outside", _symlinked("tf/savedmodel_module", "saved_model.pb"),
         CkptdiffError, "leading out of the SavedModel"),
    Case("savedmodel-variables-symlink-outside", _symlinked("tf/savedmodel_module",
                                                            "variables"),
         CkptdiffError, "leading out of the SavedModel"),
    Case("dcp-metadata-symlink-outside", _symlinked("dcp/model_optim", ".metadata"),
         CorruptFileError, "outside the checkpoint's folder"),
    Case("dcp-storage-symlink-outside", _symlinked("dcp/model_optim", "__0_0.distcp"),
         CorruptFileError, "outside the checkpoint's folder"),
    Case("tf-index-footer-lies", copy("tf/tf2_keras", _index_footer_lies), CorruptFileError,
         "past the end"),
    Case("safetensors-header-claims-2**60", _raw_header(2**60), CkptdiffError,
         "the name suggests safetensors, but the content is not"),
    Case("safetensors-header-100MB+1", _raw_header(100_000_001), CkptdiffError,
         "the name suggests safetensors, but the content is not"),
    Case("safetensors-offsets-overlap", _safetensors(
        {"a": F32, "b": {**F32, "data_offsets": [4, 12]}}, bytes(12)), CorruptFileError,
        "overlap"),
    Case("safetensors-offsets-hole", _safetensors(
        {"a": {**F32, "data_offsets": [4, 12]}}, bytes(12)), CorruptFileError, "hole"),
    Case("safetensors-truncated-data", _safetensors({"a": F32}, bytes(4)), CorruptFileError,
         "truncated download"),
    Case("safetensors-deep-json", _safetensors(
        b'{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8], "x": '
        + b"[" * 5000 + b"]" * 5000 + b"}}", bytes(8)), CorruptFileError, "nest|deep"),
    Case("safetensors-shard-symlink-outside", _symlinked(
        "safetensors/sharded", "model-00002-of-00002.safetensors"), CorruptFileError,
        "outside the index's folder"),
    Case("safetensors-shard-dotdot", copy("safetensors/sharded", _index_names(
        "../outside.safetensors")), CorruptFileError, "without '..'"),
    Case("safetensors-shard-absolute", copy("safetensors/sharded", _index_names(
        "/etc/passwd")), CorruptFileError, "without '..'"),
]


LFS_CASES = [
    Case("lfs-torch-file", lambda f: _write(f / "model.pt", LFS), CorruptFileError,
         "Git LFS pointer"),
    Case("lfs-safetensors-shard", copy("safetensors/sharded", _replace(
        "model-00001-of-00002.safetensors", LFS)), CorruptFileError, "Git LFS pointer"),
    Case("lfs-tf-index", copy("tf/tf2_keras", _replace("ckpt-1.index", LFS)), CorruptFileError,
         "Git LFS pointer"),
    Case("lfs-tf-data-shard", copy("tf/tf2_keras", _replace("ckpt-1.data-00000-of-00001", LFS)),
         CorruptFileError, "Git LFS pointer"),
    Case("lfs-saved-model-pb", copy("tf/savedmodel_module", _replace("saved_model.pb", LFS)),
         CorruptFileError, "Git LFS pointer"),
    Case("lfs-keras", lambda f: _write(f / "model.keras", LFS), CorruptFileError,
         "Git LFS pointer"),
    Case("lfs-dcp-metadata", lambda f: _dcp(f, LFS), CorruptFileError, "Git LFS pointer"),
    Case("empty-file", lambda f: _write(f / "model.safetensors", b""), CorruptFileError,
         "empty"),
    Case("empty-shard", copy("safetensors/sharded", _replace(
        "model-00002-of-00002.safetensors", b"")), CorruptFileError, "empty"),
    Case("empty-tf-index", copy("tf/tf2_keras", _replace("ckpt-1.index", b"")),
         CorruptFileError, ""),
    Case("empty-directory", lambda f: _mkdir(f / "empty"), CkptdiffError, "directory is empty"),
]


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path


def _dcp(folder: Path, metadata: bytes) -> Path:
    target = folder / "dcp"
    target.mkdir()
    (target / ".metadata").write_bytes(metadata)
    (target / "__0_0.distcp").write_bytes(zips.archive([("x/data.pkl", b"")]))
    return target
