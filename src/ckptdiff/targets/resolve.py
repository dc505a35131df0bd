"""Turn anything a target may be into a manifest: a checkpoint path (through the readers), a
manifest, a model spec, or a live model (or a class / factory that builds one), which is
dispatched to its framework adapter.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ckptdiff import readers
from ckptdiff.errors import UsageError
from ckptdiff.manifest import Manifest
from ckptdiff.targets.spec import import_spec, is_model_spec, type_names
from ckptdiff.targets.torch.module import (
    build_torch_model,
    is_torch_module,
    is_torch_module_class,
    torch_model_manifest,
)

_KERAS_MODEL_CLASSES = {"keras.src.models.model.Model", "keras.src.layers.layer.Layer",
                        "tf_keras.src.engine.training.Model", "keras.engine.training.Model"}


def _is_keras(obj: Any) -> bool:
    return bool(_KERAS_MODEL_CLASSES & type_names(obj))


Source = str | os.PathLike[str] | Manifest | Any


def resolve(obj: Source, *, key: str | None = None,
            model_kwargs: Mapping[str, Any] | None = None,
            against: Manifest | None = None) -> Manifest:
    """Turn any accepted source/target into a manifest. ``against`` is the checkpoint a live
    model will be compared with: a model describes itself in that checkpoint's loader's key
    space where it differs from its own names (a Keras model against a TF2 checkpoint)."""
    if isinstance(obj, Manifest):
        return obj
    if isinstance(obj, (str, os.PathLike)):
        text = os.fspath(obj)
        if is_model_spec(text) and not text.startswith("hf:"):  # hf:gpt2 is a cached model
            return model_manifest(import_spec(text), text, model_kwargs, against)
        return readers.read(text, key)
    if isinstance(obj, type) or callable(obj) and hasattr(obj, "__qualname__"):
        label = f"{getattr(obj, '__module__', '?')}.{obj.__qualname__}"
    else:
        label = f"<{type(obj).__name__} instance>"
    return model_manifest(obj, label, model_kwargs, against)


def snapshot(target: Source, *, key: str | None = None,
             model_kwargs: Mapping[str, Any] | None = None) -> Manifest:
    """A deterministic manifest (tensors sorted by key) to commit and diff against later."""
    manifest = resolve(target, key=key, model_kwargs=model_kwargs)
    return replace(manifest, tensors=tuple(sorted(manifest.tensors, key=lambda t: t.key)))


def model_manifest(obj: Any, label: str, kwargs: Mapping[str, Any] | None = None,
                   against: Manifest | None = None) -> Manifest:
    """The manifest a live model expects; ``obj`` is a model, a model class or a factory
    (``against``: see :func:`resolve`)."""
    kwargs = dict(kwargs or {})
    if not isinstance(obj, type) and (is_torch_module(obj) or _is_keras(obj)):
        if kwargs:
            raise UsageError(f"{label} is already a model instance: --model-kwargs cannot apply")
        return _manifest_of_instance(obj, label, "instance", against)
    if not callable(obj):
        raise UsageError(f"{label} is {type(obj).__name__}, not a torch nn.Module, a Keras model, "
                         "a model class or a factory")
    if _is_keras(obj):
        from ckptdiff.targets.keras.model import build_keras_model

        return _manifest_of_instance(build_keras_model(obj, kwargs), label, "built", against)
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
    return _manifest_of_instance(model, label, built_on, against)


def _manifest_of_instance(model: Any, label: str, built_on: str,
                          against: Manifest | None) -> Manifest:
    if is_torch_module(model):
        return torch_model_manifest(model, label, built_on)
    from ckptdiff.targets.keras.model import keras_model_manifest

    manifest: Manifest = keras_model_manifest(model, label, against)
    return manifest
