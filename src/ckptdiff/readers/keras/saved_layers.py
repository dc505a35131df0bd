"""Keras 3's saved layout (``layers/dense_1/vars/0``) turned into keys the user recognises.

Keras 3 saves each saveable object (the model, each layer, the optimizer) as a group holding a
``vars`` group with its variables at ``0, 1, …``; recent Keras 3 releases (3.15 does) put the
layer's name on ``vars`` as the ``name`` attribute, older ones did not. A layer inside a list
(``model.layers``) is saved under its class in snake case, made unique (``dense``,
``dense_1``); a layer held in an attribute is saved under the attribute's name (an LSTM's
``cell``). The ``.weights.h5`` and ``.keras`` readers and the live Keras target all describe a
model as :class:`SavedLayer` objects and name them here, so their keys agree by construction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from ckptdiff.manifest import TensorInfo
from ckptdiff.readers.keras.names import (
    CLASS_BY_SNAKE,
    VariableName,
    child_class,
    join_key,
    name_variables,
)

Path = tuple[str, ...]
NON_LAYER_ROOTS = ("optimizer",)  # top-level saveables that are training state, not layers


@dataclass(frozen=True)
class SavedVariable:
    """One saved variable: the name it is saved under (``"0"``) and its header facts."""

    index: str
    shape: tuple[int, ...]
    dtype: str
    nbytes: int | None
    storage: str | None = None
    trainable: bool | None = None  # known for live variables only
    variable_name: str | None = None  # the framework's own path, for live variables


@dataclass(frozen=True)
class SavedLayer:
    """One saveable object: its saved path, its ``name`` attribute, its variables."""

    path: Path
    name: str | None
    variables: tuple[SavedVariable, ...]


def _order(variable: SavedVariable) -> tuple[int, int, str]:
    index = variable.index
    return (0, int(index), "") if index.isdigit() else (1, 0, index)


def saved_layer_tensors(
    layers: Sequence[SavedLayer],
    names_by_path: Mapping[Path, str] | None = None,
    layer_trainable: Callable[[tuple[str, ...]], bool | None] | None = None,
) -> list[TensorInfo]:
    """Tensors of the saved layers, keyed ``<layer names>/<variable>`` (see keras_names).

    ``names_by_path`` names layers of files too old to carry ``name`` attributes;
    ``layer_trainable`` says, from a model config, whether a chain of layers is frozen.
    """
    by_path = {layer.path: layer for layer in layers}
    known_names = names_by_path or {}
    classes: dict[Path, str | None] = {}

    def name_of(path: Path) -> str:
        layer = by_path.get(path)
        if layer is not None and layer.name:
            return layer.name
        return known_names.get(path, path[-1])

    def class_of(path: Path) -> str | None:
        if path not in classes:
            parent = path[:-1]
            if not path:
                classes[path] = None
            elif parent in by_path:  # held in an attribute: only its role or name tells
                classes[path] = child_class(class_of(parent), name_of(path))
            else:  # a list item, saved under its own class name
                classes[path] = CLASS_BY_SNAKE.get(_strip_counter(path[-1]))
        return classes[path]

    tensors: list[TensorInfo] = []
    used: set[str] = set()
    for layer in sorted(layers, key=lambda item: item.path):
        variables = sorted(layer.variables, key=_order)
        if not variables:
            continue
        if layer.path[:1] and layer.path[0] in NON_LAYER_ROOTS:
            tensors.extend(_training_state(layer.path, variables))
            continue
        chain = tuple(name_of(layer.path[:n]) for n in range(1, len(layer.path) + 1)
                      if layer.path[:n] in by_path)
        numbered = [v.index for v in variables] == [str(i) for i in range(len(variables))]
        names = (name_variables(class_of(layer.path), len(variables)) if numbered else
                 [VariableName(f"vars/{v.index}", "parameter", None, True) for v in variables])
        config_flag = layer_trainable(chain) if layer_trainable else None
        for variable, named in zip(variables, names, strict=True):
            key = join_key(chain, named.name)
            if key in used:  # two layers with one name (possible in subclassed models)
                key = f"{key}@{'/'.join(layer.path)}"
            used.add(key)
            tensors.append(TensorInfo(
                key=key, shape=variable.shape, dtype=variable.dtype, device=None,
                nbytes=variable.nbytes, storage=variable.storage, kind=named.kind,
                trainable=_trainable(variable, named, config_flag),
                variable_name=variable.variable_name
                if variable.variable_name != key else None,
            ))
    return tensors


def _trainable(variable: SavedVariable, named: VariableName,
               config_flag: bool | None) -> bool | None:
    if variable.trainable is not None:
        return variable.trainable
    if named.kind == "buffer" or config_flag is False:
        return False
    # A config that lists the layer as trainable says so for its named parameters; a custom
    # layer's positional variable may have been created non-trainable, so that stays unknown.
    return True if config_flag and not named.positional else None


def _training_state(path: Path, variables: Sequence[SavedVariable]) -> list[TensorInfo]:
    # Optimizer variables: iterations and learning rate (scalars), then slots per weight.
    return [TensorInfo(
        key=join_key(path, f"vars/{v.index}"), shape=v.shape, dtype=v.dtype, device=None,
        nbytes=v.nbytes, storage=v.storage, kind="optimizer_slot" if v.shape else "other",
        trainable=False) for v in variables]


def _strip_counter(segment: str) -> str:
    head, _, tail = segment.rpartition("_")
    return head if head and tail.isdigit() else segment
