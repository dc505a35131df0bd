"""Live Keras model targets: the manifest of what a Keras model saves and loads.

Keys follow the Keras readers' rule (see ``ckptdiff.readers.keras.names``): the model is walked
by Keras' own saving code with a store that records each variable instead of writing it, which
yields exactly the saved layout of a ``.weights.h5`` file (paths, layer names, positions), and
that layout is named by the same function the readers use. A file written by a model therefore
has the model's keys, shapes and dtypes. Devices are null on both sides: Keras files record none.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from ckptdiff.dtypes import DTYPES, nbytes
from ckptdiff.errors import UsageError
from ckptdiff.manifest import Manifest, TensorInfo
from ckptdiff.readers.keras.saved_layers import (
    NON_LAYER_ROOTS,
    SavedLayer,
    SavedVariable,
    saved_layer_tensors,
)
from ckptdiff.targets.keras.keyspace import V3_FORMATS
from ckptdiff.targets.keras.load_walk import paths_loaded_from
from ckptdiff.targets.keras.objectgraph import bound_keys, first_paths, model_root
from ckptdiff.targets.keras.record import record_saved_state
from ckptdiff.targets.keras.unregistered import unregistered_variables
from ckptdiff.targets.spec import type_names

_KERAS_PACKAGES = ("keras", "tf_keras")
_KERAS_BASES = ("Layer", "Model")


def is_keras_model(obj: Any) -> bool:
    """True for a Keras model (or layer) instance, judged by its classes' modules only."""
    if isinstance(obj, type):
        return False
    return any(name.split(".", 1)[0] in _KERAS_PACKAGES and name.rsplit(".", 1)[-1]
               in _KERAS_BASES for name in type_names(obj))


def build_keras_model(obj: Callable[..., Any], kwargs: Mapping[str, Any]) -> Any:
    """Call a model class or factory with ``kwargs`` and return the built model."""
    label = getattr(obj, "__qualname__", repr(obj))
    try:
        model = obj(**kwargs)
    except Exception as exc:  # user code may raise anything
        raise UsageError(f"building {label}(**{dict(kwargs)!r}) failed: "
                         f"{type(exc).__name__}: {exc}") from None
    if not is_keras_model(model):
        raise UsageError(f"{label} returned {type(model).__name__}, not a Keras model")
    return ensure_built(model, label)


def ensure_built(model: Any, label: str) -> Any:
    """``model``, built from its recorded build config if needed; otherwise a ``UsageError``."""
    if getattr(model, "built", True):
        return model
    build_config = None
    if hasattr(model, "get_build_config"):
        try:
            build_config = model.get_build_config()
        except Exception:  # custom get_build_config may fail; then the shape is unknown
            build_config = None
    if build_config:
        try:
            model.build_from_config(build_config)
            return model
        except Exception as exc:  # user build() code may raise anything
            raise UsageError(f"{label}: building the Keras model from its build config failed: "
                             f"{type(exc).__name__}: {exc}") from None
    raise UsageError(
        f"{label}: the Keras model {getattr(model, 'name', '')!r} is not built, so it has no "
        "weights yet and its input shape is unknown; start it with keras.Input(shape=...) or "
        "call model.build(input_shape) in the factory")


def keras_model_manifest(model: Any, path_label: str,
                         against: Manifest | None = None) -> Manifest:
    """The manifest of the variables ``model`` saves (and ``load_weights`` expects).

    Against a TF2 checkpoint or SavedModel (``against``), whose restore pairs objects by their
    path in the object graph, the keys are those paths instead, rooted where that checkpoint
    holds the model (see :mod:`ckptdiff.targets.keras.objectgraph`), and the Keras names are
    kept in ``metadata["user_keys"]``. Against a ``.weights.h5``/``.keras`` file,
    ``metadata["saved_paths"]`` holds the path ``load_weights`` fills each variable from
    (:mod:`ckptdiff.targets.keras.load_walk`), which ``targets.keras.keyspace`` keys by.
    """
    ensure_built(model, path_label)
    recorded = record_saved_state(model)
    saved_paths: dict[str, str] = {}
    variables: dict[int, str] = {}  # id(variable) -> key
    if recorded is not None:
        layers = [_saved_layer(path, name, values) for path, (name, values) in recorded.items()
                  if not (path[:1] and path[0] in NON_LAYER_ROOTS)]
        # Storage is the path save_weights writes (what load_weights matches by); it is kept
        # in metadata for diff --explain, the tensors themselves have no storage.
        named = saved_layer_tensors(layers)
        tensors = [replace(t, storage=None) for t in named]
        saved_paths = {t.key: t.storage for t in named if t.storage}
        by_storage = {"/".join((*path, "vars", index)): value
                      for path, (_, values) in recorded.items() for index, value in values}
        variables = {id(by_storage[s]): key for key, s in saved_paths.items() if s in by_storage}
        if against is not None and against.format in V3_FORMATS:  # paired where load_weights
            saved_paths = paths_loaded_from(model, recorded, against, saved_paths)  # fills
    else:  # Keras without the saving internals ckptdiff records through (e.g. tf_keras 2)
        tensors = _tensors_from_variable_paths(model)
        variables = {id(v): t.key for v, t in zip(model.weights, tensors, strict=True)}
    keras_module = sys.modules.get("keras")
    metadata: dict[str, Any] = {
        "live_model": True,
        "model_class": f"{type(model).__module__}.{type(model).__qualname__}",
        "model_name": getattr(model, "name", None),
        "keras_version": getattr(keras_module, "__version__", None),
        "layers_with_weights": [layer.name for layer in getattr(model, "layers", ())
                                if getattr(layer, "weights", None)],
        "unbuilt_layers": sorted(layer.name for layer in _sublayers(model)
                                 if not getattr(layer, "built", True)),
        "bytes_read": 0,
    }
    metadata.update(_load_facts(model, saved_paths, variables))
    known = {id(value) for _, values in (recorded or {}).values() for _, value in values}
    known.update(id(v) for v in (*getattr(model, "variables", ()), *model.weights))
    unregistered = unregistered_variables(model, known, _dtype_name)
    if unregistered:  # variables Keras never saves (ckptdiff.diffing.unregistered)
        metadata["unregistered"] = unregistered
    manifest = Manifest(path=path_label, format="keras-model", tensors=tuple(tensors),
                        metadata=metadata)
    if against is not None and against.metadata.get("tf_checkpoint_kind") == "tf2":
        return in_object_graph_keys(manifest, model, variables, against)
    return manifest


def in_object_graph_keys(manifest: Manifest, model: Any, variables: dict[int, str],
                         checkpoint: Manifest) -> Manifest:
    """``manifest`` keyed as ``tf.train.Checkpoint.restore`` pairs the model with
    ``checkpoint``: each variable by the checkpoint key that restores it, the others by the
    path a checkpoint of this model would give them."""
    other_paths = checkpoint.metadata.get("object_paths", {})
    paths = {t.key: [t.key, *other_paths.get(t.key, ())] for t in checkpoint.tensors
             if t.kind != "optimizer_slot"}
    root = model_root(model, variables, paths)
    bound = bound_keys(model, variables, paths, root)
    first = {variables[i]: path for i, path in first_paths(model).items() if i in variables}
    prefix = f"{root}/" if root else ""
    keys = {t.key: bound.get(t.key) or prefix + first.get(t.key, t.key) for t in manifest.tensors}
    metadata = {**manifest.metadata, "key_space": "tf-object-graph",
                "object_graph_root": root,
                "user_keys": {new: old for old, new in keys.items() if new != old}}
    metadata.pop("saved_paths", None)  # load_weights' paths: not this loader's
    return replace(manifest, tensors=tuple(replace(t, key=keys[t.key]) for t in manifest.tensors),
                   metadata=metadata)


def _load_facts(model: Any, saved_paths: dict[str, str],
                variables: dict[int, str]) -> dict[str, Any]:
    """What the Keras loaders pair by (``targets.keras.keyspace``, ``loaders.keras*``): the path
    each key is saved under (``.weights.h5``/``.keras``), and the legacy ``.h5`` loader's view of
    the model: its top-level layers (``model.layers``, with the keys of their weights in legacy
    order, trainable first, as ``_legacy_weights`` lists them; null where a weight is not one
    of the saved variables) and the model's own variables (``top_level_model_weights``)."""
    legacy, layers = [], []
    for layer in getattr(model, "layers", ()):
        weights = [*getattr(layer, "trainable_weights", ()),
                   *getattr(layer, "non_trainable_weights", ())]
        layers.append({"name": str(layer.name), "keys": [variables.get(id(w)) for w in weights]})
        if weights:
            legacy.append({"name": str(layer.name),
                           "shapes": [[int(d) for d in w.shape] for w in weights]})
    in_weights = {id(w) for w in getattr(model, "weights", ())}
    own = [*getattr(model, "_trainable_variables", ()),
           *getattr(model, "_non_trainable_variables", ())]
    facts: dict[str, Any] = {
        "legacy_h5_layers": legacy, "legacy_layers": layers,
        "legacy_top_level": [variables.get(id(v)) for v in own if id(v) in in_weights]}
    if saved_paths:
        facts["saved_paths"] = saved_paths
    return facts


def _saved_layer(path: tuple[str, ...], name: str | None,
                 values: list[tuple[str, Any]]) -> SavedLayer:
    return SavedLayer(path=path, name=name, variables=tuple(
        _saved_variable(path, index, value) for index, value in values))


def _saved_variable(layer_path: tuple[str, ...], index: str, value: Any) -> SavedVariable:
    shape = tuple(int(d) for d in value.shape)
    dtype = _dtype_name(value)
    trainable = getattr(value, "trainable", None)
    path = getattr(value, "path", None)
    return SavedVariable(index=index, shape=shape, dtype=dtype, nbytes=nbytes(dtype, shape),
                         storage="/".join((*layer_path, "vars", index)),
                         trainable=trainable if isinstance(trainable, bool) else None,
                         variable_name=path if isinstance(path, str) else None)


def _dtype_name(value: Any) -> str:
    # Keras variables give a string; backend tensors a tf/numpy dtype (.name) or a torch one.
    dtype = value.dtype
    name = dtype if isinstance(dtype, str) else getattr(dtype, "name", None) or str(dtype)
    name = str(name).removeprefix("torch.")
    return name if name in DTYPES else "other"


def _tensors_from_variable_paths(model: Any) -> list[TensorInfo]:
    # Keys from the variables' own paths: right for built-in layers, but custom layers keep
    # their variable names where files have positions. Like the readers, keys start below the
    # model (a Sequential builds its layers inside its own name scope).
    tensors = []
    for variable in model.weights:
        key = str(getattr(variable, "path", variable.name)).split(":", 1)[0]
        key = key.removeprefix(f"{getattr(model, 'name', '')}/")
        dtype = _dtype_name(variable)
        shape = tuple(int(d) for d in variable.shape)
        tensors.append(TensorInfo(key=key, shape=shape, dtype=dtype, device=None,
                                  nbytes=nbytes(dtype, shape), trainable=bool(variable.trainable)))
    return tensors


def _sublayers(model: Any) -> list[Any]:
    flatten = getattr(model, "_flatten_layers", None)
    if flatten is None:
        return list(getattr(model, "layers", ()))
    return [layer for layer in flatten(include_self=False)]
