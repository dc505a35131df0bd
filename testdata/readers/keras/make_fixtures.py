"""Keras models for the Keras reader tests, and the tiny committed fixtures (needs keras, h5py).

Run from anywhere: ``.venv/bin/python testdata/readers/keras/make_fixtures.py``; then regenerate
the goldens of this folder and review them. The tests import the model builders from here, so the
committed fixtures and the test-time files come from the same models.

Committed fixtures (written by real Keras 3 unless said otherwise):
- ``model.keras``: ``model.save`` of a tiny functional model (LSTM, Dense, BatchNormalization).
- ``model.weights.h5``: ``model.save_weights`` of the same model.
- ``legacy_model.h5``: ``model.save("x.h5")``, Keras 3's legacy HDF5 writer (full model).
- ``custom.weights.h5``: a custom layer whose variables Keras saves by position only.
- ``tf2_weights.h5``: a weights-only file in the layout tf.keras 2 wrote
  (``save_weights_to_hdf5_group``: root ``layer_names``/``backend``/``keras_version``, per-layer
  ``weight_names`` such as ``dense/kernel:0``), written with h5py because Keras 3 writes
  weights-only files in its own layout only.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import h5py  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
layers = keras.layers


@keras.saving.register_keras_serializable(package="ckptdiff_tests")
class Scale(layers.Layer):
    """A custom layer: its own variables (one trainable, one not) and a Dense child."""

    def __init__(self, units: int = 3, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.units = units
        self.proj = layers.Dense(units, name="proj_layer")

    def build(self, input_shape: Any) -> None:
        self.w = self.add_weight(shape=(input_shape[-1],), name="w")
        self.count = self.add_weight(shape=(), name="count", trainable=False, dtype="int32")
        self.proj.build(input_shape)

    def call(self, inputs: Any) -> Any:
        return self.proj(inputs * self.w)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "units": self.units}


def tiny_model(head_units: int = 2, head_name: str = "head") -> Any:
    """The committed fixtures' model: LSTM, Dense, BatchNormalization."""
    keras.utils.clear_session()
    inputs = keras.Input((3, 4), name="seq")
    x = layers.LSTM(2, name="rnn")(inputs)
    x = layers.Dense(head_units, name=head_name)(x)
    outputs = layers.BatchNormalization(name="bn")(x)
    return keras.Model(inputs, outputs, name="tiny")


def functional_model(head_units: int = 3, head_name: str = "my_dense") -> Any:
    """Dense, Conv2D, BatchNormalization, LSTM, Embedding, a nested Sequential, custom names,
    and one layer left with its default name."""
    keras.utils.clear_session()
    inner = keras.Sequential([layers.Dense(4, name="inner_dense"),
                              layers.BatchNormalization(name="inner_bn")], name="sub")
    tokens = keras.Input((6,), dtype="int32", name="tokens")
    image = keras.Input((8, 8, 1), name="image")
    x = layers.Embedding(20, 8, name="emb")(tokens)
    x = layers.LSTM(5, name="my_lstm")(x)
    y = layers.Conv2D(2, 3, name="conv")(image)
    y = layers.BatchNormalization(name="conv_bn")(y)
    y = layers.GlobalAveragePooling2D(name="pool")(y)
    z = inner(layers.Concatenate(name="concat")([x, y]))
    z = layers.Dense(head_units, name=head_name)(z)
    outputs = layers.Dense(2)(z)
    return keras.Model([tokens, image], outputs, name="functional_model")


def sequential_model() -> Any:
    """A Sequential model: Conv2D, BatchNormalization without center, Dense."""
    keras.utils.clear_session()
    return keras.Sequential([
        keras.Input((6, 6, 2)),
        layers.Conv2D(3, 3, name="c1"),
        layers.BatchNormalization(name="bn1"),
        layers.Flatten(),
        layers.Dense(4, use_bias=False, name="out"),
    ], name="seq")


def custom_model() -> Any:
    """A functional model around the custom :class:`Scale` layer, one layer frozen."""
    keras.utils.clear_session()
    inputs = keras.Input((4,), name="x")
    x = layers.Dense(4, name="pre")(inputs)
    outputs = Scale(3, name="scale")(x)
    model = keras.Model(inputs, outputs, name="custom")
    model.get_layer("pre").trainable = False
    return model


@keras.saving.register_keras_serializable(package="ckptdiff_tests")
class Net(keras.Model):
    """A subclassed model: layers in a list attribute and in plain attributes."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.body = [layers.Dense(4, name="d1"), layers.Dense(2)]
        self.norm = layers.BatchNormalization(name="norm")
        self.rnn = layers.GRU(3, name="gru")

    def call(self, inputs: Any) -> Any:
        for layer in self.body:
            inputs = layer(inputs)
        return self.rnn(self.norm(inputs)[:, None, :])


def subclassed_model() -> Any:
    """A built :class:`Net`."""
    keras.utils.clear_session()
    model = Net(name="net")
    model(np.zeros((1, 3), dtype="float32"))
    return model


def write_tf2_weights(model: Any, path: Path, nested_prefix: bool = False) -> None:
    """A weights-only HDF5 file in tf.keras 2's layout, for ``model``'s layers.

    tf.keras 2 named variables ``<scope>/<name>:0``; the layers of a nested model built on its
    own carried no prefix of the outer layer (``inner_dense/kernel:0`` in group ``sub``), which
    ``nested_prefix=False`` reproduces.
    """
    with h5py.File(path, "w") as handle:
        handle.attrs["layer_names"] = [layer.name.encode() for layer in model.layers]
        handle.attrs["backend"] = b"tensorflow"
        handle.attrs["keras_version"] = b"2.15.0"
        for layer in sorted(model.layers, key=lambda item: item.name):
            group = handle.create_group(layer.name)
            weights = layer.trainable_weights + layer.non_trainable_weights
            names = []
            for weight in weights:
                name = weight.path
                if not nested_prefix and name.count("/") > 1 and isinstance(layer, keras.Model):
                    name = name.split("/", 1)[1]
                names.append(f"{name}:0")
            group.attrs["weight_names"] = [name.encode() for name in names]
            for name, weight in zip(names, weights, strict=True):
                group.create_dataset(name, data=np.zeros(weight.shape, dtype=weight.dtype))


def main() -> None:
    """Write every committed fixture next to this script."""
    model = tiny_model()
    model.save(HERE / "model.keras")
    model.save_weights(HERE / "model.weights.h5")
    model.save(HERE / "legacy_model.h5")
    write_tf2_weights(model, HERE / "tf2_weights.h5")
    custom_model().save_weights(HERE / "custom.weights.h5")
    for name in ("model.keras", "model.weights.h5", "legacy_model.h5", "tf2_weights.h5",
                 "custom.weights.h5"):
        print(f"wrote {name}: {(HERE / name).stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
