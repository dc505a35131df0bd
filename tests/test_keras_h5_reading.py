"""Keras HDF5 files read as Keras reads them (saving_lib.H5IOStore for ``.weights.h5``,
legacy_h5_format for ``.h5``): the rules the parser-differential harness found."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import ckptdiff.readers as registry
from ckptdiff.errors import CorruptFileError

h5py = pytest.importorskip("h5py")
np = pytest.importorskip("numpy")


def _keras3(path: Path) -> Any:
    handle = h5py.File(path, "w")
    handle.create_group("vars").attrs["name"] = "model"
    dense = handle.create_group("layers/dense/vars")
    dense.attrs["name"] = "fc"
    dense["0"] = np.zeros((3, 2), dtype="float32")
    dense["1"] = np.zeros((2,), dtype="float32")
    return handle


def _legacy(path: Path) -> Any:
    handle = h5py.File(path, "w")
    handle.attrs["layer_names"] = [b"fc"]
    group = handle.create_group("fc")
    group.attrs["weight_names"] = [b"fc/kernel:0", b"fc/bias:0"]
    group["fc/kernel:0"] = np.zeros((3, 2), dtype="float32")
    group["fc/bias:0"] = np.zeros((2,), dtype="float32")
    return handle


def _refused(path: Path, text: str) -> None:
    with pytest.raises(CorruptFileError, match=text) as caught:
        registry.read(path)
    assert "\n" not in str(caught.value)


def test_group_hard_linked_under_two_names_is_read_at_both(tmp_path: Path) -> None:
    path = tmp_path / "x.weights.h5"
    with _keras3(path) as handle:
        handle["layers/dense_1"] = handle["layers/dense"]
    keys = registry.read(path).keys()
    assert len(keys) == 4 and keys[:2] == ["fc/kernel", "fc/bias"]


@pytest.mark.parametrize(("edit", "text"), [
    (lambda v: v.__delitem__("0"), "finds nothing at /layers/dense/vars/0"),
    (lambda v: v.create_group("2"), "finds a group at /layers/dense/vars/2"),
    (lambda v: v.__setitem__("x", np.zeros(1)), "finds nothing at /layers/dense/vars/2"),
])
def test_vars_are_read_by_position(tmp_path: Path, edit: Any, text: str) -> None:
    path = tmp_path / "x.weights.h5"
    with _keras3(path) as handle:
        edit(handle["layers/dense/vars"])
    _refused(path, text)


def _replace(handle: Any, where: str, **options: Any) -> None:
    del handle[where]
    handle.create_dataset(where, **options)


@pytest.mark.parametrize(("options", "dtype"), [
    ({"shape": (2,), "dtype": h5py.vlen_dtype("f4")}, "other"),
    ({"shape": (2,), "dtype": h5py.ref_dtype}, "other"),
    ({"shape": (2,), "dtype": h5py.string_dtype()}, "string"),
    ({"shape": (2,), "dtype": "S4"}, "string"),
    ({"shape": (2,), "dtype": [("a", "f4")]}, "other"),
])
def test_numpy_reading_gives_the_dtype(tmp_path: Path, options: Any, dtype: str) -> None:
    path = tmp_path / "x.weights.h5"
    with _keras3(path) as handle:
        _replace(handle, "layers/dense/vars/1", **options)
    assert registry.read(path).tensors[1].dtype == dtype


@pytest.mark.parametrize(("options", "text"), [
    ({"data": h5py.Empty("f4")}, "null dataspace"),
    ({"shape": (1 << 40,), "dtype": "f4", "chunks": (1024,)}, "shape bomb"),
    ({"shape": (2,), "dtype": np.dtype(("f4", (3,)))}, "array datatype"),
])
@pytest.mark.parametrize("make", [_keras3, _legacy])
def test_what_keras_cannot_read_is_refused(tmp_path: Path, make: Any, options: Any,
                                           text: str) -> None:
    path = tmp_path / "x.h5"
    with make(path) as handle:
        _replace(handle, "layers/dense/vars/1" if make is _keras3 else "fc/fc/bias:0", **options)
    _refused(path, text)


def test_filter_this_hdf5_lacks_is_refused(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "x.weights.h5"
    with _keras3(path) as handle:
        _replace(handle, "layers/dense/vars/1", data=np.zeros(2, "f4"), fletcher32=True)
    available = h5py.h5z.filter_avail  # HDF5 writes no file with a filter it lacks: pretend
    monkeypatch.setattr(h5py.h5z, "filter_avail", lambda code: code != 3 and available(code))
    _refused(path, "filter 3")


def test_optional_filter_is_not_needed(tmp_path: Path) -> None:
    path = tmp_path / "x.weights.h5"
    with _keras3(path) as handle:  # h5py marks an unknown filter optional: HDF5 skips it
        _replace(handle, "layers/dense/vars/1", shape=(2,), dtype="f4", compression=32001,
                 allow_unknown_filter=True)
    assert registry.read(path).tensors[1].dtype == "float32"


@pytest.mark.parametrize(("marker", "stored", "dtype"), [
    ("bfloat16", None, "bfloat16"), (np.array([b"bfloat16"]), None, "other"),
    ("bfloat16", "f4", "refused"), (np.array(["bfloat16", "x"], dtype=object), None, "refused"),
])
def test_bfloat16_marker_as_h5iostore_tests_it(tmp_path: Path, marker: Any, stored: Any,
                                              dtype: str) -> None:
    import ml_dtypes

    path = tmp_path / "x.weights.h5"
    with _keras3(path) as handle:
        del handle["layers/dense/vars/1"]
        values = np.zeros(2, dtype=stored or ml_dtypes.bfloat16)
        handle["layers/dense/vars/1"] = values
        handle["layers/dense/vars/1"].attrs["dtype"] = marker
    if dtype == "refused":
        _refused(path, "bfloat16")
    else:
        assert registry.read(path).tensors[1].dtype == dtype


@pytest.mark.parametrize(("value", "text"), [
    ("fc", "finds|does not exist"),  # a str scalar: Keras iterates its characters
    (np.array([b"\xff"]), "not UTF-8"),
    (np.arange(2), "holds a int64"),
    (np.int64(1), "not a list of names"),
])
def test_layer_names_read_as_keras_reads_them(tmp_path: Path, value: Any, text: str) -> None:
    path = tmp_path / "x.h5"
    with _legacy(path) as handle:
        handle["fc"].attrs["weight_names"] = value
    with pytest.raises(CorruptFileError, match=text):
        registry.read(path)


def test_top_level_layers_beside_model_weights_is_ambiguous(tmp_path: Path) -> None:
    path = tmp_path / "x.h5"
    with _legacy(path) as handle:
        handle.create_group("model_weights").attrs["layer_names"] = [b"fc"]
    _refused(path, "ambiguous")


@pytest.mark.parametrize("config", [np.int64(1), np.bytes_(b"\xff{}")])
def test_model_config_must_be_json_text(tmp_path: Path, config: Any) -> None:
    path = tmp_path / "x.h5"
    with h5py.File(path, "w") as handle:
        handle.attrs["model_config"] = config
        with _legacy(tmp_path / "weights.h5") as weights:
            weights.copy(weights["/"], handle, "model_weights")
            for name, value in weights.attrs.items():
                handle["model_weights"].attrs[name] = value
    _refused(path, "model_config")


def test_weights_file_without_the_model_vars_group(tmp_path: Path) -> None:
    path = tmp_path / "x.weights.h5"
    with _keras3(path) as handle:
        del handle["vars"]
    assert registry.read(path).keys() == ["fc/kernel", "fc/bias"]
