"""The generated matrix of the Keras/TF differential loader suite: tiny Keras 3 models, the
variants a user rebuilds them as, and the files Keras and TensorFlow write for them.

A case is a model family, a variant of it (the target: identical rebuild, a layer renamed,
added, removed, widened, the layers reordered), a file kind written from the base model, and
the loader judged by (None: ckptdiff's default for the file). Every layer and model is named
explicitly, so two builds of one variant have the same variable paths.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import h5py  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

VARIANTS = ("identity", "renamed", "added", "removed", "widened", "reordered")
FILES = ("weights_h5", "keras", "legacy_h5", "tf_checkpoint", "savedmodel")
Spec = list[tuple[str, int, str]]  # (layer kind, units, name)


def _vary(spec: Spec, variant: str) -> Spec:
    """``spec`` changed the way ``variant`` says (the first layer is the one edited)."""
    spec = list(spec)
    if variant == "renamed":
        kind, units, name = spec[-1]
        spec[-1] = (kind, units, f"{name}_renamed")
    elif variant == "added":
        spec.insert(1, ("dense", spec[0][1], "extra"))
    elif variant == "removed":
        del spec[1]
    elif variant == "widened":
        kind, units, name = spec[0]
        spec[0] = (kind, units + 2, name)
    elif variant == "reordered":
        spec[0], spec[1] = spec[1], spec[0]
    return spec


def _layer(kind: str, units: int, name: str) -> Any:
    if kind == "dense":
        return keras.layers.Dense(units, name=name)
    if kind == "bn":
        return keras.layers.BatchNormalization(name=name)
    return keras.layers.LSTM(units, name=name)


def sequential(variant: str) -> Any:
    """Dense, BatchNormalization, Dense in a Sequential."""
    spec = _vary([("dense", 6, "enc"), ("bn", 0, "bn"), ("dense", 3, "head")], variant)
    return keras.Sequential([keras.Input((6,)), *(_layer(*s) for s in spec)], name="seq")


def functional(variant: str) -> Any:
    """The same layers wired as a functional model (BatchNormalization keeps the width, so a
    reordered model has the same shapes)."""
    spec = _vary([("dense", 6, "enc"), ("bn", 0, "bn"), ("dense", 2, "head")], variant)
    inputs = keras.Input((6,), name="x")
    hidden = inputs
    for layer in spec:
        hidden = _layer(*layer)(hidden)
    return keras.Model(inputs, hidden, name="func")


def lstm(variant: str) -> Any:
    """An LSTM (its cell holds the variables) and a Dense head."""
    spec = _vary([("lstm", 5, "rnn"), ("dense", 4, "mid"), ("dense", 2, "head")], variant)
    return keras.Sequential([keras.Input((3, 4)), *(_layer(*s) for s in spec)], name="rnn_seq")


class Tower(keras.Model):
    """A subclassed model whose layers are attributes, assigned in ``spec`` order;
    ``keep_attributes``: a renamed layer keeps its attribute (only ``name=`` changed)."""

    def __init__(self, spec: Spec | None = None, scale: bool = False,
                 keep_attributes: bool = False, **kwargs: Any) -> None:
        super().__init__(name="tower", **kwargs)
        self.spec = spec or []
        self.attributes = [name.removesuffix("_renamed") if keep_attributes else name
                           for _, _, name in self.spec]
        for (kind, units, name), attribute in zip(self.spec, self.attributes, strict=True):
            setattr(self, attribute, _layer(kind, units, name))
        if scale:  # a bare tf.Variable attribute: Keras does not track it
            self.scale = tf.Variable(np.ones(2, "float32"), name="scale")

    def call(self, x: Any) -> Any:
        for attribute in self.attributes:
            x = getattr(self, attribute)(x)
        return x

    def get_config(self) -> dict[str, Any]:
        return {}


def _tower(spec: Spec, scale: bool, keep_attributes: bool) -> Any:
    model = Tower(spec, scale=scale, keep_attributes=keep_attributes)
    model(np.zeros((1, 4), "float32"))
    return model


def subclassed(variant: str) -> Any:
    """Dense layers as attributes named as the layers (renaming one renames its attribute)."""
    return _tower(_vary([("dense", 5, "encoder"), ("dense", 5, "mid"), ("dense", 2, "head")],
                        variant), scale=False, keep_attributes=False)


def bare_variable(variant: str) -> Any:
    """A subclassed model with a bare ``tf.Variable`` attribute beside its layers (renaming a
    layer keeps its attribute)."""
    return _tower(_vary([("dense", 3, "proj"), ("dense", 2, "head")], variant), scale=True,
                  keep_attributes=True)


MODELS: dict[str, Callable[[str], Any]] = {
    "sequential": sequential, "functional": functional, "lstm": lstm,
    "subclassed": subclassed, "bare_variable": bare_variable,
}


@dataclass(frozen=True)
class Case:
    """One differential case: model family, target variant, file kind, judging loader."""

    model: str
    variant: str
    file: str
    loader: str | None = None

    @property
    def name(self) -> str:
        """``sequential-renamed-legacy_h5`` (plus the loader where it is not the default)."""
        return "-".join([self.model, self.variant, self.file, *([self.loader] if self.loader
                                                                 else [])])


def cases() -> list[Case]:
    """The whole matrix, plus the non-default Keras loaders on the variants they change."""
    out = [Case(model, variant, file) for model in MODELS for variant in VARIANTS
           for file in FILES]
    for model in ("sequential", "subclassed"):
        for variant in ("renamed", "removed", "widened"):
            out.append(Case(model, variant, "legacy_h5", "keras.load_weights-by_name"))
            out.append(Case(model, variant, "legacy_h5", "keras.load_weights-skip_mismatch"))
            out.append(Case(model, variant, "weights_h5", "keras.load_weights-skip_mismatch"))
    return out


def _randomised(model: Any) -> Any:
    rng = np.random.default_rng(0)
    for variable in model.weights:
        variable.assign(rng.random(tuple(variable.shape)).astype("float32"))
    return model


def write(model_name: str, file: str, folder: Path) -> str:
    """The base model of ``model_name`` saved as ``file``; the path the loader reads."""
    keras.utils.clear_session()
    model = MODELS[model_name]("identity")
    folder.mkdir(parents=True, exist_ok=True)
    if file == "tf_checkpoint":  # one Adam step, then the model and its optimizer
        optimizer = keras.optimizers.Adam()
        model.compile(optimizer=optimizer, loss="mse")
        inputs = np.random.rand(4, *model.input_shape[1:]) if hasattr(model, "input_shape") \
            else np.random.rand(4, 4)
        model.fit(inputs, np.random.rand(4, *model.output_shape[1:]) if hasattr(
            model, "output_shape") else np.random.rand(4, 2), verbose=0, epochs=1)
        return str(tf.train.Checkpoint(model=model, optimizer=optimizer).save(
            str(folder / "ckpt")))
    _randomised(model)
    if file == "weights_h5":
        model.save_weights(folder / "m.weights.h5")
        return str(folder / "m.weights.h5")
    if file == "keras":
        model.save(folder / "m.keras")
        return str(folder / "m.keras")
    if file == "legacy_h5":  # Keras 3's legacy writer (model.save("x.h5") needs a config)
        from keras.src.legacy.saving import legacy_h5_format

        with h5py.File(folder / "m.h5", "w") as handle:
            legacy_h5_format.save_weights_to_hdf5_group(handle, model)
        return str(folder / "m.h5")
    tf.saved_model.save(model, str(folder / "sm"))
    return str(folder / "sm")
