"""A Keras file and a live Keras model keyed the way ``model.load_weights`` pairs them.

Keras 3 (``saving_lib._load_state``) walks the model as ``save_weights`` did and asks the file's
``H5IOStore`` for each saveable's group by its *saving path*: ``layers/dense_1`` for the second
``Dense`` in ``model.layers`` (a list item is named by its class in snake case, made unique in
list order), ``encoder`` for a layer held in an attribute, ``vars`` for the model's own
variables. A layer's variables are read by position (``vars/0``, ``vars/1``). User layer names
play no part: a renamed layer loads, a group the model does not ask for is never read. So
against a ``.weights.h5``/``.keras`` file both sides are keyed by saving path
(``layers/dense_1/vars/0``), the file's tensors by the path they are stored under, the model's
by the path ``save_weights`` would give them (``metadata["saved_paths"]``).

Keras 3's legacy ``.h5`` loader (``legacy_h5_format.load_weights_from_hdf5_group``) pairs the
file's layers that have weights with ``model.layers`` that have weights, by order, and within a
layer the weights by position in ``trainable_weights + non_trainable_weights`` (the file's
``weight_names`` order); ``by_name=True`` pairs layers by name instead. Both sides are keyed
``layer#3/weight#1`` (by order) or ``dense/weight#1`` (by name); the model's own variables are
``top_level_model_weights/weight#0`` in both.

The names users know (``classifier/kernel``) stay in ``metadata["user_keys"]`` (key → name);
``metadata["legacy_slots"]`` maps each legacy key to ``[layer name, position among the layers
with weights (-1 for the model's own), weight position]``, so a legacy judge can pair by the
other rule too. Pure functions over manifests: no Keras import.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ckptdiff.manifest import Manifest, TensorInfo

SAVED_PATH = "keras-saved-path"
LEGACY_ORDER = "keras-legacy-order"
LEGACY_NAME = "keras-legacy-name"
TOP_LEVEL = "top_level_model_weights"
V3_FORMATS = frozenset({"keras-weights-h5", "keras-zip"})
_WEIGHT_KINDS = ("parameter", "buffer")  # model variables; optimizer state keeps its keys

Slot = tuple[str, int, int]  # (layer name, position among layers with weights, weight position)


def legacy_key(slot: Slot, by_name: bool) -> str:
    """The legacy key of ``slot``: ``layer#3/weight#1``, ``dense/weight#1`` by name."""
    name, position, weight = slot
    if position < 0:
        return f"{TOP_LEVEL}/weight#{weight}"
    return f"{name if by_name else f'layer#{position}'}/weight#{weight}"


def in_keras_key_space(source: Manifest, target: Manifest,
                       by_name: bool = False) -> tuple[Manifest, Manifest]:
    """Both sides keyed as ``load_weights`` pairs a Keras file with a live Keras model (legacy
    ``.h5`` by layer name when ``by_name``); other pairs, and pairs whose keys would collide
    there, unchanged."""
    if target.format != "keras-model" or "key_space" in target.metadata:
        return source, target
    if source.format in V3_FORMATS and isinstance(target.metadata.get("saved_paths"), dict):
        return _by_saved_path(source, target)
    if source.format == "keras-h5" and isinstance(target.metadata.get("legacy_layers"), list):
        return _by_legacy_slot(source, target, by_name)
    return source, target


def _rekeyed(manifest: Manifest, keys: Mapping[str, str], space: str,
             extra: Mapping[str, Any]) -> Manifest | None:
    new = [keys.get(t.key, t.key) for t in manifest.tensors]
    if len(set(new)) != len(new):
        return None
    metadata = {**manifest.metadata, **extra, "key_space": space,
                "user_keys": {keys[old]: old for old in keys if keys[old] != old}}
    return replace(manifest, metadata=metadata, tensors=tuple(
        replace(t, key=key) for t, key in zip(manifest.tensors, new, strict=True)))


def _by_saved_path(source: Manifest, target: Manifest) -> tuple[Manifest, Manifest]:
    member = source.metadata.get("weights_member")
    prefix = f"{member}/" if isinstance(member, str) else ""
    stored = {t.key: t.storage.removeprefix(prefix) for t in source.tensors
              if t.kind in _WEIGHT_KINDS and t.storage}
    saved_paths: dict[str, str] = {str(k): str(v) for k, v in
                                   target.metadata["saved_paths"].items()}
    new_source = _rekeyed(source, stored, SAVED_PATH, {})
    new_target = _rekeyed(target, saved_paths, SAVED_PATH,
                          {"saved_paths": {path: path for path in saved_paths.values()}})
    if new_source is None or new_target is None:
        return source, target
    return new_source, new_target


def file_slots(source: Manifest) -> dict[str, Slot]:
    """Each weight of a legacy ``.h5`` by its slot: the file's layers with weights in
    ``layer_names`` order, each layer's weights in ``weight_names`` order."""
    prefix = "model_weights/" if source.metadata.get("saved") == "model" else ""
    grouped: dict[str, list[TensorInfo]] = {}
    for info in source.tensors:
        if info.kind in _WEIGHT_KINDS and info.storage:
            layer = info.storage.removeprefix(prefix).split("/", 1)[0]
            grouped.setdefault(layer, []).append(info)
    order: Any = source.metadata.get("layers_with_weights")
    names = [str(n) for n in order] if isinstance(order, list) else list(grouped)
    names = [n for n in names if n in grouped and n != TOP_LEVEL]
    slots = {info.key: (name, position, weight) for position, name in enumerate(names)
             for weight, info in enumerate(grouped[name])}
    slots.update({info.key: (TOP_LEVEL, -1, weight)
                  for weight, info in enumerate(grouped.get(TOP_LEVEL, ()))})
    return slots


def model_slots(target: Manifest) -> dict[str, Slot] | None:
    """Each model variable by the slot the legacy loader fills it from; None when a layer's
    weight is not one of the saved variables (then nothing is keyed by slot)."""
    slots: dict[str, Slot] = {}
    position = 0
    for layer in target.metadata["legacy_layers"]:
        keys = layer.get("keys") or []
        if None in keys:
            return None
        for weight, key in enumerate(keys):
            slots.setdefault(str(key), (str(layer["name"]), position, weight))
        position += bool(keys)
    own = target.metadata.get("legacy_top_level") or []
    if None in own:
        return None
    for weight, key in enumerate(own):
        slots.setdefault(str(key), (TOP_LEVEL, -1, weight))
    return slots


def _by_legacy_slot(source: Manifest, target: Manifest,
                    by_name: bool) -> tuple[Manifest, Manifest]:
    stored, expected = file_slots(source), model_slots(target)
    if expected is None:
        return source, target
    space = LEGACY_NAME if by_name else LEGACY_ORDER
    sides = []
    for manifest, slots in ((source, stored), (target, expected)):
        keys = {old: legacy_key(slot, by_name) for old, slot in slots.items()}
        sides.append(_rekeyed(manifest, keys, space, {"legacy_slots": {
            keys[old]: list(slot) for old, slot in slots.items()}}))
    new_source, new_target = sides
    if new_source is None or new_target is None:
        return source, target
    return new_source, new_target
