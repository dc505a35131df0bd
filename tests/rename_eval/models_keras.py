"""Evaluation cases from Keras 3 models: layer renames, scopes, auto-numbering, Keras ↔ torch.

Keras sources are ``.weights.h5`` files read by ckptdiff's Keras reader (keys like
``dense_1/kernel``, storage ``layers/dense_1/vars/0``); Keras targets are live models.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.rename_eval.models_torch import Case, cnn, mlp, state_manifest, target

import ckptdiff
from ckptdiff.manifest import Manifest


def keras_file(model: Any, tmp: Path, name: str) -> Manifest:
    """Save ``model``'s weights and read them back the way ckptdiff reads any checkpoint."""
    path = tmp / f"{name}.weights.h5"
    model.save_weights(path)
    return ckptdiff.read(path)


def dense_stack(names: Sequence[str], widths: Sequence[int], inputs: int = 4) -> Any:
    import keras

    layers = [keras.layers.Dense(w, name=n) for n, w in zip(names, widths, strict=True)]
    return keras.Sequential([keras.Input((inputs,)), *layers])


def layer_rename(tmp: Path) -> Case:
    source = keras_file(dense_stack(["dense", "dense_1"], [8, 4]), tmp, "rename")
    return ("keras_layer_rename", "Keras layer renamed dense_1 -> dense_layer_1",
            source, target(dense_stack(["dense", "dense_layer_1"], [8, 4])),
            lambda k: k.replace("dense_1/", "dense_layer_1/"))


def scoped(scope: str) -> Any:
    import keras

    inner = keras.Sequential([keras.layers.Dense(8, name="dense"),
                              keras.layers.Dense(4, name="proj")], name=scope)
    return keras.Sequential([keras.Input((3,)), inner, keras.layers.Dense(2, name="head")])


def scope_rename(tmp: Path) -> Case:
    return ("keras_scope_rename", "a nested Keras model renamed net -> network (scope net/)",
            keras_file(scoped("net"), tmp, "scope"), target(scoped("network")),
            lambda k: "network/" + k[len("net/"):] if k.startswith("net/") else None)


def autonumber_shift(tmp: Path) -> Case:
    names = ["dense_3", "dense_4", "dense_5"]
    source = keras_file(dense_stack(names, [8, 16, 4]), tmp, "numbered")
    model = dense_stack(["dense", "dense_1", "dense_2"], [8, 16, 4])
    renamed = dict(zip(names, ["dense", "dense_1", "dense_2"], strict=True))
    return ("keras_autonumber_shift", "a Keras model built again in one session: dense_3..",
            source, target(model),
            lambda k: renamed[k.split("/")[0]] + "/" + k.split("/")[1])


def keras_mlp(names: Sequence[str] = ("dense", "dense_1", "dense_2")) -> Any:
    return dense_stack(names, [16, 8, 3])


def to_torch_mlp(tmp: Path) -> Case:
    index = {"dense": 0, "dense_1": 2, "dense_2": 4}
    leaf = {"kernel": "weight", "bias": "bias"}
    return ("keras_to_torch_mlp", "Keras Dense stack into torch Sequential(Linear, ReLU, ...)",
            keras_file(keras_mlp(), tmp, "mlp"), target(mlp([4, 16, 8, 3])),
            lambda k: f"{index[k.split('/')[0]]}.{leaf[k.split('/')[1]]}")


def keras_cnn() -> Any:
    import keras

    return keras.Sequential([
        keras.Input((6, 6, 3)),
        keras.layers.Conv2D(8, 3, name="conv2d"), keras.layers.BatchNormalization(
            name="batch_normalization"), keras.layers.ReLU(),
        keras.layers.Conv2D(16, 3, name="conv2d_1"), keras.layers.BatchNormalization(
            name="batch_normalization_1"), keras.layers.ReLU(),
        keras.layers.Flatten(), keras.layers.Dense(10, name="dense")])


def to_torch_cnn(tmp: Path) -> Case:
    index = {"conv2d": 0, "batch_normalization": 1, "conv2d_1": 3,
             "batch_normalization_1": 4, "dense": 7}
    leaf = {"kernel": "weight", "bias": "bias", "gamma": "weight", "beta": "bias",
            "moving_mean": "running_mean", "moving_variance": "running_var"}
    return ("keras_to_torch_cnn", "Keras Conv2D/BatchNorm/Dense into the same torch CNN",
            keras_file(keras_cnn(), tmp, "cnn"), target(cnn()),
            lambda k: f"{index[k.split('/')[0]]}.{leaf[k.split('/')[1]]}")


def torch_to_keras(tmp: Path) -> Case:
    name = {"0": "dense", "2": "dense_1", "4": "dense_2"}
    leaf = {"weight": "kernel", "bias": "bias"}
    return ("torch_to_keras_mlp", "torch Sequential MLP into the same Keras Dense stack",
            state_manifest(mlp([4, 16, 8, 3]).state_dict()), target(keras_mlp()),
            lambda k: f"{name[k.split('.')[0]]}/{leaf[k.split('.')[1]]}")


def named_to_torch(tmp: Path) -> Case:
    from torch import nn

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc1 = nn.Linear(4, 16)
            self.fc2 = nn.Linear(16, 8)
            self.fc3 = nn.Linear(8, 3)

    return ("keras_named_to_torch", "Keras layers named like the torch attributes (fc1, fc2..)",
            keras_file(keras_mlp(("fc1", "fc2", "fc3")), tmp, "named"), target(Net()),
            lambda k: k.replace("/kernel", ".weight").replace("/bias", ".bias"))


def keras_negative(tmp: Path) -> Case:
    import keras

    other = keras.Sequential([keras.Input((6, 6, 3)), keras.layers.Conv2D(4, 3, name="conv"),
                              keras.layers.Flatten(), keras.layers.Dense(3, name="out")])
    return ("keras_mlp_vs_cnn", "negative: two unrelated Keras models",
            keras_file(keras_mlp(), tmp, "neg"), target(other), [])


KERAS_CASES = (layer_rename, scope_rename, autonumber_shift, to_torch_mlp, to_torch_cnn,
               torch_to_keras, named_to_torch, keras_negative)


def to_torch_extra_head(tmp: Path) -> Case:
    index = {"dense": 0, "dense_1": 2, "dense_2": 4}
    leaf = {"kernel": "weight", "bias": "bias"}
    return ("keras_to_torch_extra_layer", "Keras Dense stack into a torch MLP with one more layer",
            keras_file(keras_mlp(), tmp, "extra"), target(mlp([4, 16, 8, 3, 3])),
            lambda k: f"{index[k.split('/')[0]]}.{leaf[k.split('/')[1]]}")


def cnn_vs_torch_mlp(tmp: Path) -> Case:
    return ("keras_cnn_vs_torch_mlp", "negative: a Keras CNN against an unrelated torch MLP",
            keras_file(keras_cnn(), tmp, "cnnneg"), target(mlp([4, 16, 8, 3])), [])


def user_named_to_torch(tmp: Path) -> Case:
    names = ("encoder", "decoder", "head")
    model = dense_stack(names, [8, 8, 3], inputs=8)
    index = {"encoder": 0, "decoder": 2, "head": 4}
    leaf = {"kernel": "weight", "bias": "bias"}
    return ("keras_user_named_to_torch", "Keras layers with the user's names, two same-shaped",
            keras_file(model, tmp, "usernamed"), target(mlp([8, 8, 8, 3])),
            lambda k: f"{index[k.split('/')[0]]}.{leaf[k.split('/')[1]]}")


KERAS_CASES = (*KERAS_CASES, to_torch_extra_head, cnn_vs_torch_mlp, user_named_to_torch)
