"""Hostile, damaged and unusual Keras files: refused with one-line errors, never followed."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path
from typing import Any

import pytest
from tests.test_keras_oracle import keras_models, save_all

import ckptdiff.readers as registry
from ckptdiff.errors import (
    CkptdiffError,
    CorruptFileError,
    MissingDependencyError,
    UnknownFormatError,
    UnsafeContentError,
    UsageError,
)

h5py = pytest.importorskip("h5py")
np = pytest.importorskip("numpy")


def keras3_file(path: Path) -> Any:
    """An h5py file in Keras 3's layout with one Dense layer (kernel, bias)."""
    handle = h5py.File(path, "w")
    handle.create_group("vars").attrs["name"] = "model"
    dense = handle.create_group("layers/dense/vars")
    dense.attrs["name"] = "fc"
    dense["0"] = np.zeros((3, 2), dtype="float32")
    dense["1"] = np.zeros((2,), dtype="float32")
    return handle


def legacy_file(path: Path) -> Any:
    """An h5py file in the tf.keras 2 weights layout with one Dense layer."""
    handle = h5py.File(path, "w")
    handle.attrs["layer_names"] = [b"fc"]
    group = handle.create_group("fc")
    group.attrs["weight_names"] = [b"fc/kernel:0", b"fc/bias:0"]
    group["fc/kernel:0"] = np.zeros((3, 2), dtype="float32")
    group["fc/bias:0"] = np.zeros((2,), dtype="float32")
    return handle


def test_plain_files_read(tmp_path: Path) -> None:
    keras3_file(tmp_path / "a.weights.h5").close()
    legacy_file(tmp_path / "b.h5").close()
    assert registry.read(tmp_path / "a.weights.h5").keys() == ["fc/kernel", "fc/bias"]
    legacy = registry.read(tmp_path / "b.h5")
    assert legacy.keys() == ["fc/kernel", "fc/bias"]
    assert legacy["fc/kernel"].variable_name == "fc/kernel:0"


@pytest.mark.parametrize("make", [keras3_file, legacy_file])
def test_external_link_is_refused(tmp_path: Path, make: Any) -> None:
    secret = tmp_path / "secret.h5"
    with h5py.File(secret, "w") as other:
        other["data"] = np.ones((3, 2), dtype="float32")
    with make(tmp_path / "x.h5") as handle:
        group = handle["layers/dense/vars"] if "layers" in handle else handle["fc/fc"]
        name = "0" if "0" in group else "kernel:0"
        del group[name]
        group[name] = h5py.ExternalLink(str(secret), "/data")
    with pytest.raises(UnsafeContentError, match="external link") as caught:
        registry.read(tmp_path / "x.h5")
    assert caught.value.exit_code == 3
    assert str(caught.value).startswith(str(tmp_path / "x.h5"))


def test_external_link_at_the_top_is_not_followed_by_the_sniffers(tmp_path: Path) -> None:
    with keras3_file(tmp_path / "x.h5") as handle:
        handle["layers/other"] = h5py.ExternalLink(str(tmp_path / "missing.h5"), "/")
    with pytest.raises(UnsafeContentError, match=r"/layers/other is an HDF5 external link"):
        registry.read(tmp_path / "x.h5")


def test_virtual_dataset_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "source.h5"
    with h5py.File(source, "w") as other:
        other["data"] = np.ones((3, 2), dtype="float32")
    layout = h5py.VirtualLayout(shape=(3, 2), dtype="float32")
    layout[:] = h5py.VirtualSource(str(source), "data", shape=(3, 2))
    with keras3_file(tmp_path / "x.h5") as handle:
        del handle["layers/dense/vars/0"]
        handle["layers/dense/vars"].create_virtual_dataset("0", layout)
    with pytest.raises(UnsafeContentError, match="virtual dataset"):
        registry.read(tmp_path / "x.h5")


def test_dataset_in_external_raw_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "raw.bin").write_bytes(bytes(24))
    with legacy_file(tmp_path / "x.h5") as handle:
        del handle["fc/fc/kernel:0"]
        handle["fc/fc"].create_dataset("kernel:0", shape=(3, 2), dtype="float32",
                                       external=[(str(tmp_path / "raw.bin"), 0, 24)])
    with pytest.raises(UnsafeContentError, match="external files"):
        registry.read(tmp_path / "x.h5")


def test_soft_link_is_corrupt(tmp_path: Path) -> None:
    with keras3_file(tmp_path / "x.h5") as handle:
        handle["layers/alias"] = h5py.SoftLink("/layers/dense")
    with pytest.raises(CorruptFileError, match="SoftLink"):
        registry.read(tmp_path / "x.h5")


def test_hard_link_cycle_is_read_once(tmp_path: Path) -> None:
    with keras3_file(tmp_path / "x.h5") as handle:
        handle["layers/dense/loop"] = handle["layers"]
    assert registry.read(tmp_path / "x.h5").keys() == ["fc/kernel", "fc/bias"]


@pytest.mark.parametrize("damage", ["missing_layer", "missing_weight", "dotdot", "not_a_group"])
def test_inconsistent_legacy_files(tmp_path: Path, damage: str) -> None:
    with legacy_file(tmp_path / "x.h5") as handle:
        if damage == "missing_layer":
            handle.attrs["layer_names"] = [b"fc", b"gone"]
        elif damage == "missing_weight":
            handle["fc"].attrs["weight_names"] = [b"fc/kernel:0", b"fc/gone:0"]
        elif damage == "dotdot":
            handle["fc"].attrs["weight_names"] = [b"../fc/fc/kernel:0"]
        else:
            handle["fc"].attrs["weight_names"] = [b"fc/kernel:0/x"]
    with pytest.raises(CorruptFileError) as caught:
        registry.read(tmp_path / "x.h5")
    assert "\n" not in str(caught.value)


def test_oversized_attribute_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ckptdiff.readers.keras import hdf5 as keras_hdf5

    legacy_file(tmp_path / "x.h5").close()
    monkeypatch.setattr(keras_hdf5, "MAX_ATTRIBUTE_ITEMS", 1)
    with pytest.raises(CorruptFileError, match="implausibly large"):
        registry.read(tmp_path / "x.h5")


def test_hdf5_that_is_not_keras(tmp_path: Path) -> None:
    with h5py.File(tmp_path / "data.h5", "w") as handle:
        handle["images"] = np.zeros((2, 2))
    with pytest.raises(UnknownFormatError, match="suggests keras-h5, but the content is not"):
        registry.read(tmp_path / "data.h5")
    with h5py.File(tmp_path / "data.h5", "a") as handle:
        handle.attrs["layer_names"] = [b"images_layer"]
    with pytest.raises(CorruptFileError, match="/images_layer does not exist"):
        registry.read(tmp_path / "data.h5")


def test_user_block_before_the_superblock(tmp_path: Path) -> None:
    with h5py.File(tmp_path / "x.weights.h5", "w", userblock_size=1024) as handle:
        handle.create_group("vars")
        handle["layers/dense/vars/0"] = np.zeros((2, 2), dtype="float16")
    assert registry.read(tmp_path / "x.weights.h5")["dense/kernel"].dtype == "float16"


def test_key_is_a_usage_error(tmp_path: Path) -> None:
    keras3_file(tmp_path / "x.weights.h5").close()
    with pytest.raises(UsageError):
        registry.read(tmp_path / "x.weights.h5", "state_dict")


def test_missing_h5py_gives_the_install_hint(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    legacy_file(tmp_path / "x.h5").close()
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "h5py" else real(name, *a))
    with pytest.raises(MissingDependencyError, match=r"pip install 'ckptdiff\[h5\]'"):
        registry.read(tmp_path / "x.h5")


@pytest.fixture(scope="module")
def all_formats(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return save_all(keras_models().functional_model(), tmp_path_factory.mktemp("formats"))


@pytest.mark.parametrize("fmt", ["keras", "weights_h5", "legacy_h5", "tf2_weights_h5"])
def test_truncation_anywhere_is_a_clear_error(all_formats: dict[str, Path], fmt: str,
                                              tmp_path: Path) -> None:
    data = all_formats[fmt].read_bytes()
    victim = tmp_path / all_formats[fmt].name
    for cut in sorted({*range(0, len(data), max(1, len(data) // 40)), len(data) - 1}):
        victim.write_bytes(data[:cut])
        with pytest.raises(CkptdiffError) as caught:
            registry.read(victim)
        assert "\n" not in str(caught.value), cut


def test_compressed_keras_member_reads_the_same(all_formats: dict[str, Path],
                                                tmp_path: Path) -> None:
    source = all_formats["keras"]
    deflated = tmp_path / "deflated.keras"
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(deflated, "w",
                                                         zipfile.ZIP_DEFLATED) as new:
        for info in old.infolist():
            new.writestr(info.filename, old.read(info))
    plain, packed = registry.read(source), registry.read(deflated)
    assert packed.metadata["weights_compressed"] is True
    assert packed.tensors == plain.tensors


def test_keras_zip_without_weights(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "x.keras", "w") as archive:
        archive.writestr("config.json", "{}")
        archive.writestr("metadata.json", "{}")
    with pytest.raises(CorruptFileError, match="without model.weights.h5"):
        registry.read(tmp_path / "x.keras")


def test_zip_of_another_kind_is_not_claimed(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "model.pth", "w") as archive:
        archive.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
    head = (tmp_path / "model.pth").read_bytes()[:4096]
    claimed = [e.reader.name for e in registry.registered() if e.reader.name.startswith("keras")
               and e.reader.sniff(head, tmp_path / "model.pth")]
    assert claimed == []


def test_header_only_on_a_large_model(tmp_path: Path) -> None:
    keras = keras_models().keras
    keras.utils.clear_session()
    model = keras.Sequential([keras.Input((1000,)), keras.layers.Dense(1000, name="big"),
                              keras.layers.Dense(1000, name="bigger")])
    paths = save_all(model, tmp_path)
    for fmt, path in paths.items():
        size = path.stat().st_size
        read = registry.read(path).metadata["bytes_read"]
        assert size > 8_000_000 and read < size // 100, (fmt, read, size)


def _strip_name_attributes(weights: Path) -> None:
    with h5py.File(weights, "r+") as handle:
        def strip(_: str, obj: Any) -> None:
            if "name" in obj.attrs:
                del obj.attrs["name"]
        handle.visititems(strip)
        if "name" in handle["vars"].attrs:
            del handle["vars"].attrs["name"]


def test_files_without_name_attributes(tmp_path: Path) -> None:
    """Older Keras 3 releases wrote no ``name`` on ``vars``: config.json names the layers."""
    from ckptdiff.targets.keras.model import keras_model_manifest

    model = keras_models().sequential_model()
    paths = save_all(model, tmp_path / "saved")
    old = tmp_path / "old.keras"
    with zipfile.ZipFile(paths["keras"]) as archive:
        archive.extractall(tmp_path / "unzipped")
    _strip_name_attributes(tmp_path / "unzipped" / "model.weights.h5")
    with zipfile.ZipFile(old, "w") as archive:
        for name in ("metadata.json", "config.json", "model.weights.h5"):
            archive.write(tmp_path / "unzipped" / name, name)
    expected = {(t.key, t.shape) for t in keras_model_manifest(model, "m")}
    assert {(t.key, t.shape) for t in registry.read(old)} == expected
    bare = tmp_path / "old.weights.h5"
    shutil.copy(paths["weights_h5"], bare)
    _strip_name_attributes(bare)
    manifest = registry.read(bare)
    assert "conv2d/kernel" in manifest  # without names, the saved class path is all
    assert manifest.metadata["layers_without_name_attribute"] == 4
