"""Variables a Keras model holds that Keras does not track: what ``save_weights`` never writes.

Keras 3 layers track ``keras.Variable`` objects (``add_weight``), layers and Keras containers. A
``tf.Variable`` assigned to a layer attribute, kept in a list or dict, or held by a plain Python
object (or a ``tf.Module``) is not in ``model.weights`` nor ``model.trainable_variables``: no
gradient reaches it through them, ``save_weights``/``model.save`` do not write it and
``load_weights`` does not set it. ``tf.train.Checkpoint`` still saves the ones hanging directly
off layers and ``tf.Module`` attributes (TensorFlow tracks those), not the ones in lists, dicts or
plain objects.

The walk starts at the model, follows attributes of layers, ``tf.Module`` objects and plain
objects of the user's own classes, and the items of lists, tuples and dicts; every variable found
that Keras does not know is recorded with its attribute path and the fix.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from ckptdiff.targets.spec import type_names

MAX_DEPTH = 6
MAX_ITEMS = 10_000  # items of one container looked at (a list of data is not a list of state)
_LIBRARY_ROOTS = ("keras", "tf_keras", "tensorflow", "numpy", "builtins", "torch", "jax")
_FIX = "create it with self.add_weight(...) in build() (or keras.Variable(...))"


@dataclass
class _Walk:
    known: set[int]
    dtype_of: Callable[[Any], str]
    found: list[dict[str, Any]] = field(default_factory=list)
    seen: set[int] = field(default_factory=set)


def unregistered_variables(model: Any, known: set[int],
                           dtype_of: Callable[[Any], str]) -> list[dict[str, Any]]:
    """Records (JSON-ready) of variables reachable from ``model`` that are not in ``known``
    (the ids of the variables Keras saves and tracks)."""
    walk = _Walk(known=set(known), dtype_of=dtype_of)
    _visit(model, [], "model", True, 0, walk)
    return walk.found


def _visit(value: Any, path: list[str], attribute: str, tf_tracked: bool, depth: int,
           walk: _Walk) -> None:
    if _is_variable(value):
        if id(value) not in walk.known:
            walk.known.add(id(value))
            walk.found.append(_record(value, path, attribute, tf_tracked, walk))
        return
    if depth >= MAX_DEPTH or id(value) in walk.seen:
        return
    if isinstance(value, (list, tuple)):
        walk.seen.add(id(value))
        for index, item in enumerate(value[:MAX_ITEMS]):
            _visit(item, [*path, str(index)], f"{attribute}[{index}]", False, depth + 1, walk)
    elif isinstance(value, dict):
        walk.seen.add(id(value))
        for name, item in islice(value.items(), MAX_ITEMS):
            if isinstance(name, (str, int)) and not isinstance(name, bool):
                _visit(item, [*path, str(name)], f"{attribute}[{name!r}]", False, depth + 1, walk)
    elif _is_trackable_holder(value) or _is_user_object(value):
        walk.seen.add(id(value))
        holder_tracked = tf_tracked and _is_trackable_holder(value)
        for name, item in vars(value).items():
            if name.startswith("_"):  # Keras and TensorFlow internals live in _-attributes
                continue
            _visit(item, [*path, name], f"{attribute}.{name}", holder_tracked, depth + 1, walk)
        # Layers of a Sequential or functional model live in Keras internals: follow them too.
        for layer in _sublayers(value):
            name = str(getattr(layer, "name", ""))
            _visit(layer, [*path, name], f"{attribute}.get_layer({name!r})", holder_tracked,
                   depth + 1, walk)


def _record(variable: Any, path: list[str], attribute: str, tf_tracked: bool,
            walk: _Walk) -> dict[str, Any]:
    checkpoint = ("tf.train.Checkpoint(model=...) does save it" if tf_tracked else
                  "tf.train.Checkpoint does not save it either")
    reason = (f"a {_kind(variable)} Keras does not track: not in model.weights or "
              "model.trainable_variables (no gradient reaches it through them), not written by "
              f"save_weights()/model.save(), not set by load_weights(); {checkpoint}")
    return {
        "key": "/".join(path), "attribute": attribute,
        "shape": [int(d) for d in variable.shape], "dtype": walk.dtype_of(variable),
        "device": None, "requires_grad": bool(getattr(variable, "trainable", False)),
        "container": None, "reason": reason, "fix": _FIX,
    }


def _kind(variable: Any) -> str:
    names = type_names(variable)
    # Keras 3's TensorFlow-backend variables also derive from TensorFlow classes: Keras first.
    if any(name.startswith(("keras.", "tf_keras.")) for name in names):
        return "keras.Variable"
    if any(name.startswith("tensorflow.") for name in names):
        return "tf.Variable"
    return f"{type(variable).__name__} variable"


def _sublayers(value: Any) -> list[Any]:
    layers = vars(value).get("_layers") if hasattr(value, "__dict__") else None
    return list(layers) if isinstance(layers, (list, tuple)) else []


def _is_variable(value: Any) -> bool:
    if isinstance(value, type) or not hasattr(value, "assign"):
        return False
    return any(name.rsplit(".", 1)[-1] in ("Variable", "BaseResourceVariable")
               for name in type_names(value))


def _is_trackable_holder(value: Any) -> bool:
    """A Keras layer or a ``tf.Module``: objects whose attributes TensorFlow tracks."""
    names = type_names(value)
    return any(name.endswith((".Layer", ".Module")) and name.split(".", 1)[0] in
               ("keras", "tf_keras", "tensorflow") for name in names)


def _is_user_object(value: Any) -> bool:
    module = type(value).__module__.split(".", 1)[0]
    return module not in _LIBRARY_ROOTS and hasattr(value, "__dict__") and not isinstance(
        value, type) and not callable(value)
