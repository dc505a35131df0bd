"""The Keras dry run for legacy ``.h5`` files: ``load_weights`` pairs layers by position.

Keras' legacy loader (``load_weights_from_hdf5_group``) lines up the model's layers that have
weights with the file's layer groups that have weights, in order, ignoring names. A different
number of layers raises, so does a different number of weights in a paired layer (even with
``skip_mismatch=True``); a shape that differs raises unless ``skip_mismatch=True``, which skips that
weight with a warning. Weights are compared in legacy order (trainable first).
"""

from __future__ import annotations

from typing import Any

from ckptdiff.loaders.common import listed, shape_text
from ckptdiff.loaders.optimizer_slots import WEIGHT_KINDS
from ckptdiff.loaders.statement import LoadStatement
from ckptdiff.manifest import Manifest, TensorInfo

_TOP_LEVEL = "top_level_model_weights"


def explain_legacy_h5(source: Manifest, target: Manifest, call: str) -> list[LoadStatement]:
    """Statements for ``model.load_weights(legacy.h5)`` and its ``skip_mismatch=True`` form."""
    skip_call = call[:-1] + ", skip_mismatch=True)"
    model_layers = target.metadata.get("legacy_h5_layers")
    if not isinstance(model_layers, list):
        return [LoadStatement("keras", call, "not_applicable",
                              "the target does not record its layers (not a live Keras model).")]
    saved = _saved_layers(source)
    if len(saved) != len(model_layers):
        message = ("ValueError: Layer count mismatch when loading weights from file. Model "
                   f"expected {len(model_layers)} layers, found {len(saved)} saved layers.")
        return [LoadStatement("keras", c, "raises", message) for c in (call, skip_call)]
    pairs: list[str] = []
    mismatches: list[tuple[str, str]] = []  # (message, target layer name)
    for index, (layer, (file_name, weights)) in enumerate(zip(model_layers, saved, strict=True)):
        name, shapes = str(layer["name"]), [tuple(s) for s in layer["shapes"]]
        if name != file_name:
            pairs.append(f"{file_name} → {name}")
        if len(weights) != len(shapes):
            message = (f"ValueError: Weight count mismatch for layer #{index} (named {name} in "
                       f"the current model, {file_name} in the save file). Layer expects "
                       f"{len(shapes)} weight(s). Received {len(weights)} saved weight(s)")
            return [LoadStatement("keras", c, "raises", message, (name,))
                    for c in (call, skip_call)]
        for expected, stored in zip(shapes, weights, strict=True):
            if expected != stored.shape:
                mismatches.append((
                    f"Shape mismatch in layer #{index} (named {name})for weight "
                    f"{stored.variable_name or stored.key}. Weight expects shape "
                    f"{shape_text(expected)}. Received saved weight with shape "
                    f"{shape_text(stored.shape)}", name))
    by_position = (f" Layers pair up by position, names ignored: {listed(pairs)}."
                   if pairs else "")
    if mismatches:
        layers = tuple(dict.fromkeys(name for _, name in mismatches))
        return [
            LoadStatement("keras", call, "raises", f"ValueError: {mismatches[0][0]}"
                          f"{by_position}", layers),
            LoadStatement("keras", skip_call, "partial", f"skips {len(mismatches)} weight(s) "
                          f"with a warning each (layers {listed(list(layers))}); they keep their "
                          f"initial values.{by_position}", layers),
        ]
    return [LoadStatement("keras", call, "loads", f"loads the {len(saved)} layers with weights "
                          f"in order.{by_position}")]


def _saved_layers(source: Manifest) -> list[tuple[str, list[TensorInfo]]]:
    """The file's layers with weights, in the file's order, each with its weights."""
    prefix = "model_weights/" if source.metadata.get("saved") == "model" else ""
    grouped: dict[str, list[TensorInfo]] = {}
    for info in source.tensors:
        if info.kind not in WEIGHT_KINDS or not info.storage:
            continue
        layer = info.storage.removeprefix(prefix).split("/", 1)[0]
        if layer != _TOP_LEVEL:
            grouped.setdefault(layer, []).append(info)
    order: Any = source.metadata.get("layers_with_weights")
    names = [str(n) for n in order] if isinstance(order, list) else list(grouped)
    return [(name, grouped.get(name, [])) for name in names]
