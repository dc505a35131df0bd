"""What a Keras model config (``config.json`` of a ``.keras`` zip, ``model_config`` of a legacy
``.h5``) says about layers: their classes, their ``trainable`` flags and their saved paths.

Configs come from untrusted files: every access checks types, and nothing in them is executed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ckptdiff.errors import CorruptFileError
from ckptdiff.readers.keras.names import to_snake_case

Chain = tuple[str, ...]
MAX_CONFIG_DEPTH = 64


@dataclass
class ConfigIndex:
    """Layers of a model config, indexed by their chain of names below the model."""

    model_class: str | None = None
    model_name: str | None = None
    classes: dict[Chain, str] = field(default_factory=dict)
    trainable: dict[Chain, bool] = field(default_factory=dict)
    # Keras 3 saved path of each container item (("layers", "dense_1")) → the layer's name.
    names_by_path: dict[tuple[str, ...], str] = field(default_factory=dict)

    def class_of(self, chain: Chain) -> str | None:
        """The class the config gives the layer at ``chain`` (None for unlisted children)."""
        return self.classes.get(chain)

    def layer_trainable(self, chain: Chain) -> bool | None:
        """False when the layer or one of its parents is frozen; True when the config lists one
        of them as trainable and none frozen; None when the config says nothing."""
        flags = [self.trainable[chain[:n]] for n in range(len(chain) + 1)
                 if chain[:n] in self.trainable]
        if not flags:
            return None
        return all(flags)


def parse_config(text: str | bytes, path: str, what: str) -> ConfigIndex:
    """Index the model config JSON ``text`` read from ``what`` of ``path``."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise CorruptFileError(f"{path}: {what} is not valid JSON: {exc}") from None
    index = ConfigIndex()
    if isinstance(data, Mapping):
        index.model_class = _text(data.get("class_name"))
        index.model_name = _name(data)
        _visit(data, (), (), index, 0, path)
    return index


def _visit(entry: Mapping[str, Any], chain: Chain, saved_path: tuple[str, ...],
           index: ConfigIndex, depth: int, path: str) -> None:
    if depth > MAX_CONFIG_DEPTH:
        raise CorruptFileError(f"{path}: model config nested deeper than {MAX_CONFIG_DEPTH}")
    class_name = _text(entry.get("class_name"))
    inner = entry.get("config")
    if class_name is not None:
        index.classes[chain] = class_name
    if isinstance(inner, Mapping) and isinstance(inner.get("trainable"), bool):
        index.trainable[chain] = inner["trainable"]
    # Keras 2.0 Sequential configs are the bare list of layers.
    layers = inner.get("layers") if isinstance(inner, Mapping) else inner
    if not isinstance(layers, list):
        return
    used: dict[str, int] = {}
    for layer in layers:
        if not isinstance(layer, Mapping):
            continue
        layer_class = _text(layer.get("class_name")) or "Layer"
        # Sequential.layers (what Keras 3 saves) leaves out the InputLayer its config lists.
        if class_name == "Sequential" and layer_class == "InputLayer":
            continue
        unique = _unique_name(to_snake_case(layer_class), used)
        name = _name(layer) or unique
        item_path = (*saved_path, "layers", unique)
        index.names_by_path[item_path] = name
        _visit(layer, (*chain, name), item_path, index, depth + 1, path)


def _unique_name(name: str, used: dict[str, int]) -> str:
    # Keras 3 saving_lib._get_unique_name: dense, dense_1, dense_2, …
    if name in used:
        used[name] += 1
        return f"{name}_{used[name]}"
    used[name] = 0
    return name


def _name(entry: Mapping[str, Any]) -> str | None:
    inner = entry.get("config")
    if isinstance(inner, Mapping) and isinstance(inner.get("name"), str):
        return str(inner["name"])
    return _text(entry.get("name"))


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
