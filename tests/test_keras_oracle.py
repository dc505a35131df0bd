"""Keras files written by real Keras 3 read to exactly the variables Keras reports for the model.

The oracle is ``model.weights``: each variable's ``path``, shape and dtype. Every format is
written by Keras itself (``.keras``, ``.weights.h5``, legacy ``.h5`` full model, Keras 3's legacy
weights writer), plus the tf.keras 2 weights layout written with h5py (Keras 3 cannot write it).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

import ckptdiff.readers as registry
from ckptdiff.readers.keras.names import LAYER_VARIABLES, variable_names

MAKE_FIXTURES = Path(__file__).resolve().parent.parent / "testdata/readers/keras/make_fixtures.py"
FORMATS = ("keras", "weights_h5", "legacy_h5", "legacy_weights_h5", "tf2_weights_h5")
FORMAT_NAMES = {"keras": "keras-zip", "weights_h5": "keras-weights-h5", "legacy_h5": "keras-h5",
                "legacy_weights_h5": "keras-h5", "tf2_weights_h5": "keras-h5"}


def keras_models() -> Any:
    """The model builders of testdata/readers/keras/make_fixtures.py (imports keras once)."""
    pytest.importorskip("h5py")
    pytest.importorskip("keras")
    name = "ckptdiff_keras_test_models"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, MAKE_FIXTURES)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def save_all(model: Any, folder: Path) -> dict[str, Path]:
    """``model`` in every Keras format, written by Keras (and h5py for the tf.keras 2 layout)."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    folder.mkdir(parents=True, exist_ok=True)
    paths = {fmt: folder / name for fmt, name in (
        ("keras", "m.keras"), ("weights_h5", "m.weights.h5"), ("legacy_h5", "m.h5"),
        ("legacy_weights_h5", "m_weights.h5"), ("tf2_weights_h5", "m_tf2.h5"))}
    model.save(paths["keras"])
    model.save_weights(paths["weights_h5"])
    model.save(paths["legacy_h5"])
    with h5py.File(paths["legacy_weights_h5"], "w") as handle:
        legacy_h5_format.save_weights_to_hdf5_group(handle, model)
    keras_models().write_tf2_weights(model, paths["tf2_weights_h5"])
    return paths


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Any, dict[str, Path]]]:
    models = keras_models()
    out = {}
    for name in ("functional_model", "sequential_model", "tiny_model"):
        model = getattr(models, name)()
        out[name] = (model, save_all(model, tmp_path_factory.mktemp(name)))
    return out


def oracle(model: Any) -> set[tuple[str, tuple[int, ...], str]]:
    """``model.weights`` as (path, shape, dtype). Keys start below the model: a Sequential
    builds its layers inside its own name scope (``seq/c1/kernel``), a functional model does not
    (``my_dense/kernel``); files cannot tell the two apart, so the model's name is dropped."""
    return {(v.path.removeprefix(f"{model.name}/"), tuple(int(d) for d in v.shape),
             str(v.dtype)) for v in model.weights}


def layer_tensors(path: Path) -> set[tuple[str, tuple[int, ...], str]]:
    manifest = registry.read(path)
    return {(t.key, t.shape, t.dtype) for t in manifest if t.kind in ("parameter", "buffer")}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("model_name", ["functional_model", "sequential_model", "tiny_model"])
def test_reader_matches_model_weights(saved: dict[str, Any], model_name: str, fmt: str) -> None:
    model, paths = saved[model_name]
    assert registry.read(paths[fmt]).format == FORMAT_NAMES[fmt]
    assert layer_tensors(paths[fmt]) == oracle(model)


@pytest.mark.parametrize("fmt", FORMATS)
def test_buffers_and_trainable(saved: dict[str, Any], fmt: str) -> None:
    _, paths = saved["functional_model"]
    manifest = registry.read(paths[fmt])
    for key in ("conv_bn/moving_mean", "conv_bn/moving_variance", "sub/inner_bn/moving_mean"):
        assert manifest[key].kind == "buffer" and manifest[key].trainable is False
    assert manifest["sub/inner_bn/gamma"].kind == "parameter"
    with_config = fmt in ("keras", "legacy_h5")
    assert manifest["my_lstm/lstm_cell/kernel"].trainable is (True if with_config else None)
    assert all(t.device is None for t in manifest)


def test_frozen_layer_is_not_trainable_where_the_config_says(tmp_path: Path) -> None:
    model = keras_models().functional_model()
    model.get_layer("my_lstm").trainable = False
    paths = save_all(model, tmp_path)
    for fmt in ("keras", "legacy_h5"):
        manifest = registry.read(paths[fmt])
        assert manifest["my_lstm/lstm_cell/kernel"].trainable is False
        assert manifest["my_dense/kernel"].trainable is True


def test_legacy_metadata_records_layer_order(saved: dict[str, Any]) -> None:
    model, paths = saved["functional_model"]
    expected = [layer.name for layer in model.layers if layer.weights]
    full = registry.read(paths["legacy_h5"]).metadata
    assert full["saved"] == "model" and full["model_class"] == "Functional"
    assert full["layers_with_weights"] == expected
    assert full["layer_names"] == [layer.name for layer in model.layers]
    weights = registry.read(paths["tf2_weights_h5"]).metadata
    assert weights["saved"] == "weights" and weights["keras_version"] == "2.15.0"
    assert weights["layers_with_weights"] == expected


def test_keras_zip_metadata(saved: dict[str, Any]) -> None:
    import keras

    _, paths = saved["sequential_model"]
    metadata = registry.read(paths["keras"]).metadata
    assert metadata["keras_version"] == keras.__version__
    assert metadata["model_class"] == "Sequential" and metadata["model_name"] == "seq"
    assert metadata["weights_compressed"] is False and metadata["positional_keys"] == 0


def _built_layers() -> list[Any]:
    """One built instance of every layer class the naming table knows."""
    keras_models()
    from keras import layers as L

    def built(layer: Any, *shapes: Any) -> Any:
        layer.build(*shapes)
        return layer

    return [
        built(L.Dense(3), (2, 4)), built(L.Dense(3, use_bias=False), (2, 4)),
        built(L.EinsumDense("ab,bc->ac", output_shape=3, bias_axes="c"), (2, 4)),
        built(L.Conv1D(2, 3), (1, 8, 2)), built(L.Conv2D(2, 3), (1, 8, 8, 2)),
        built(L.Conv3D(2, 3), (1, 8, 8, 8, 2)), built(L.Conv1DTranspose(2, 3), (1, 8, 2)),
        built(L.Conv2DTranspose(2, 3), (1, 8, 8, 2)),
        built(L.Conv3DTranspose(2, 3), (1, 8, 8, 8, 2)),
        built(L.DepthwiseConv1D(3), (1, 8, 2)), built(L.DepthwiseConv2D(3), (1, 8, 8, 2)),
        built(L.SeparableConv1D(2, 3), (1, 8, 2)), built(L.SeparableConv2D(2, 3), (1, 8, 8, 2)),
        built(L.BatchNormalization(), (2, 4)), built(L.BatchNormalization(center=False), (2, 4)),
        built(L.LayerNormalization(), (2, 4)), built(L.GroupNormalization(2), (2, 4)),
        built(L.RMSNormalization(), (2, 4)), built(L.Embedding(5, 3), (2, 4)),
        built(L.LSTMCell(3), (2, 4)), built(L.GRUCell(3, use_bias=False), (2, 4)),
        built(L.SimpleRNNCell(3), (2, 4)), built(L.PReLU(), (2, 4)),
        built(L.Normalization(), (2, 4)),
        built(L.ConvLSTM2D(2, 3), (1, 2, 8, 8, 2)).cell,
    ]


def test_naming_table_matches_keras_saved_order() -> None:
    """Each table row is what Keras saves: trainable-at-creation variables first, then the rest,
    each in creation order (``Layer.save_own_variables``)."""
    seen = set()
    for layer in _built_layers():
        saved_order = layer._trainable_variables + layer._non_trainable_variables
        names = tuple(v.name for v in saved_order)
        cls = type(layer).__name__
        seen.add(cls)
        if cls == "BatchNormalization" and len(names) == 3:
            # gamma or beta dropped: three variables cannot say which, so they stay positional
            assert variable_names(cls, 3) is None
        else:
            assert variable_names(cls, len(names)) == names, cls
    assert seen == set(LAYER_VARIABLES)
