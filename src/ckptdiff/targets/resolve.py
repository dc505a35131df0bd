"""Dispatch a live model (or a class / factory that builds one) to its framework adapter."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from ckptdiff.errors import UsageError
from ckptdiff.manifest import Manifest
from ckptdiff.targets.spec import type_names
from ckptdiff.targets.torch import (
    build_torch_model,
    is_torch_module,
    is_torch_module_class,
    torch_model_manifest,
)

_KERAS_MODEL_CLASSES = {"keras.src.models.model.Model", "keras.src.layers.layer.Layer",
                        "tf_keras.src.engine.training.Model", "keras.engine.training.Model"}


def _is_keras(obj: Any) -> bool:
    return bool(_KERAS_MODEL_CLASSES & type_names(obj))


def model_manifest(obj: Any, label: str, kwargs: Mapping[str, Any] | None = None) -> Manifest:
    """The manifest a live model expects; ``obj`` is a model, a model class or a factory."""
    kwargs = dict(kwargs or {})
    if not isinstance(obj, type) and (is_torch_module(obj) or _is_keras(obj)):
        if kwargs:
            raise UsageError(f"{label} is already a model instance: --model-kwargs cannot apply")
        return _manifest_of_instance(obj, label, "instance")
    if not callable(obj):
        raise UsageError(f"{label} is {type(obj).__name__}, not a torch nn.Module, a Keras model, "
                         "a model class or a factory")
    if _is_keras(obj):
        from ckptdiff.targets.keras import build_keras_model

        return _manifest_of_instance(build_keras_model(obj, kwargs), label, "built")
    if is_torch_module_class(obj) or "torch" in sys.modules:
        model, built_on = build_torch_model(obj, kwargs)
    else:
        try:
            model, built_on = obj(**kwargs), "called"
        except Exception as exc:  # user code may raise anything
            raise UsageError(f"calling {label} failed: {type(exc).__name__}: {exc}") from None
    if not (is_torch_module(model) or _is_keras(model)):
        raise UsageError(f"{label} returned {type(model).__name__}, not a torch nn.Module "
                         "or a Keras model")
    return _manifest_of_instance(model, label, built_on)


def _manifest_of_instance(model: Any, label: str, built_on: str) -> Manifest:
    if is_torch_module(model):
        return torch_model_manifest(model, label, built_on)
    from ckptdiff.targets.keras import keras_model_manifest

    manifest: Manifest = keras_model_manifest(model, label)
    return manifest
