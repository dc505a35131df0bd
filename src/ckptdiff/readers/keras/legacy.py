"""The legacy Keras HDF5 layout (tf.keras 2, and ``model.save("x.h5")`` in Keras 3).

A weights group carries ``layer_names`` (every layer, in model order), and one group per layer
whose ``weight_names`` attribute lists its variables (``dense/kernel:0``); each is a dataset at
that path inside the layer's group. A full model keeps this under ``model_weights`` beside a
``model_config`` JSON attribute (and ``optimizer_weights``). The legacy loader pairs the file's
layers that have weights with the model's, BY ORDER, so the order goes into the metadata.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ckptdiff.errors import CorruptFileError
from ckptdiff.manifest import TensorInfo
from ckptdiff.readers.keras.config import Chain, ConfigIndex, parse_config
from ckptdiff.readers.keras.h5_dataset import Facts, dataset_facts
from ckptdiff.readers.keras.hdf5 import Walker, as_text, read_attribute, read_string_list
from ckptdiff.readers.keras.names import (
    VariableName,
    child_class,
    class_saving,
    join_key,
    name_variables,
    variable_names,
)

_SUFFIX = re.compile(r":\d+$")  # TensorFlow's output index in tf.keras 2 names


@dataclass(frozen=True)
class StoredWeight:
    """One weight dataset of a legacy file: its layer chain, short name and header facts."""

    chain: Chain
    short: str
    weight_name: str
    facts: Facts
    storage: str


def legacy_manifest_parts(root: Any, walker: Walker) -> tuple[list[TensorInfo], dict[str, Any]]:
    """Tensors and metadata of a legacy Keras HDF5 file (full model or weights only)."""
    path = walker.path
    full_model = "model_weights" in set(root)
    if full_model and "layer_names" in root.attrs:
        raise CorruptFileError(
            f"{path}: ambiguous: the file lists layers at its top and holds model_weights; "
            "Keras' load_weights reads the top, load_model reads model_weights")
    group = walker.child(root, "model_weights", "/model_weights") if full_model else root
    prefix = "model_weights/" if full_model else ""
    config = None
    raw_config = read_attribute(root, "model_config", path) if full_model else None
    if raw_config is not None:
        config = parse_config(_config_text(raw_config, path), path, "the model_config attribute")
    layer_names = read_string_list(group, "layer_names", path)
    if layer_names is None:
        members = ", ".join(sorted(set(root))[:8]) or "none"
        raise CorruptFileError(f"{path}: an HDF5 file, but not a Keras one: no 'layer_names' "
                               f"attribute (top-level members: {members})")
    stored: list[StoredWeight] = []
    with_weights: list[str] = []
    for layer in layer_names:
        layer_group = walker.resolve(group, layer, f"/{prefix}".rstrip("/"))
        found = _layer_weights(layer_group, layer, (layer,), f"{prefix}{layer}", walker)
        stored.extend(found)
        if found:
            with_weights.append(layer)
    if "top_level_model_weights" in set(group):  # Keras 3's own variables of the model
        top = walker.child(group, "top_level_model_weights", f"/{prefix}top_level_model_weights")
        stored.extend(_layer_weights(top, "", (), f"{prefix}top_level_model_weights", walker))
    tensors = named_tensors(stored, config)
    if full_model and "optimizer_weights" in set(root):  # only load_model restores them
        tensors.extend(_optimizer(root, walker))
    metadata: dict[str, Any] = {
        "saved": "model" if full_model else "weights",
        "keras_version": _attr_text(group, "keras_version", path),
        "backend": _attr_text(group, "backend", path),
        "layer_names": layer_names,
        "layers_with_weights": with_weights,
    }
    if config is not None:
        metadata["model_class"] = config.model_class
        metadata["model_name"] = config.model_name
    return tensors, metadata


def _layer_weights(layer_group: Any, layer: str, chain: Chain, where: str,
                   walker: Walker) -> list[StoredWeight]:
    if not walker.is_group(layer_group):
        raise CorruptFileError(f"{walker.path}: /{where} is a dataset, not a layer group")
    found = []
    for weight_name in read_string_list(layer_group, "weight_names", walker.path) or []:
        dataset = walker.resolve(layer_group, weight_name, f"/{where}")
        if not walker.is_dataset(dataset):
            raise CorruptFileError(f"{walker.path}: /{where}/{weight_name} is not a dataset")
        # load_subset_weights_from_hdf5_group: np.asarray, with no bfloat16 conversion
        facts = dataset_facts(dataset, walker.path, f"/{where}/{weight_name}",
                              bfloat16_marker=False)
        found.append(stored_weight(layer, chain, weight_name, facts, f"{where}/{weight_name}"))
    return found


def stored_weight(layer: str, chain: Chain, weight_name: str, facts: Facts,
                  storage: str) -> StoredWeight:
    """One weight of layer group ``layer`` (at ``chain``), named from its ``weight_names`` entry."""
    parts = _SUFFIX.sub("", weight_name).split("/")
    # Names hold the scopes the variable was created in: the layer's own (my_lstm/…), after
    # the model's when a Sequential built it (seq/c1/kernel), or none of the outer layer's
    # for a nested model built on its own (inner_dense/kernel in group "sub").
    if layer in parts[:-1]:
        parts = parts[parts.index(layer) + 1:]
    return StoredWeight((*chain, *parts[:-1]), parts[-1], weight_name, facts, storage)


def named_tensors(stored: list[StoredWeight], config: ConfigIndex | None) -> list[TensorInfo]:
    """The tensors of ``stored`` in file order, keyed by their layers' classes (see names)."""
    by_chain: dict[Chain, list[StoredWeight]] = {}
    for item in stored:
        by_chain.setdefault(item.chain, []).append(item)
    named_items: dict[int, tuple[str, VariableName, bool | None]] = {}  # id(item) -> naming
    for chain, items in by_chain.items():
        real = [item.short for item in items]
        cls = _layer_class(chain, real, config, chain[:-1] in by_chain)
        flag = config.layer_trainable(chain) if config is not None else None
        known = variable_names(cls, len(items)) is not None
        names = name_variables(cls if known else None, len(items))
        for item, named in zip(items, names, strict=True):
            named_items[id(item)] = (join_key(chain, named.name), named, flag)
    # Tensors in the file's order (each layer's weight_names): the legacy loader pairs a
    # layer's weights by that position, and chains of a nested layer may interleave in it
    # (trainable weights of every child first, then the non-trainable ones).
    tensors: list[TensorInfo] = []
    used: set[str] = set()
    for item in stored:
        key, named, flag = named_items[id(item)]
        if key in used:
            key = f"{key}@{item.storage}"
        used.add(key)
        shape, dtype, nbytes = item.facts
        trainable = False if named.kind == "buffer" or flag is False else (
            True if flag and not named.positional else None)
        tensors.append(TensorInfo(
            key=key, shape=shape, dtype=dtype, device=None, nbytes=nbytes,
            storage=item.storage, kind=named.kind, trainable=trainable,
            variable_name=item.weight_name if item.weight_name != key else None))
    return tensors


def _layer_class(chain: Chain, real: list[str], config: ConfigIndex | None,
                 parent_has_variables: bool) -> str | None:
    """The class of the layer at ``chain``, found the way the live target finds it (see
    keras_saved_layers): the config's class where it lists the layer; for a child of a listed
    layer, its role or default name. Where the file says nothing (weights-only files, subclassed
    models), the class is guessed: a top-level layer, or the child of a layer without variables
    of its own (a nested model or a wrapper such as an RNN), is a built-in layer when its variable
    names are exactly that layer's; the child of a layer with variables (a custom layer) only
    when its default name says so."""
    if not chain:
        return None
    listed = config.class_of(chain) if config is not None else None
    if listed is not None:
        return listed
    parent = config.class_of(chain[:-1]) if config is not None and len(chain) > 1 else None
    if parent is not None or (len(chain) > 1 and parent_has_variables):
        return child_class(parent, chain[-1])
    return class_saving(real)


def _optimizer(root: Any, walker: Walker) -> list[TensorInfo]:
    group = walker.child(root, "optimizer_weights", "/optimizer_weights")
    tensors = []
    for weight_name in read_string_list(group, "weight_names", walker.path) or []:
        dataset = walker.resolve(group, weight_name, "/optimizer_weights")
        if not walker.is_dataset(dataset):
            raise CorruptFileError(f"{walker.path}: /optimizer_weights/{weight_name} "
                                   "is not a dataset")
        # optimizer.set_weights converts them; a failure there only warns
        shape, dtype, nbytes = dataset_facts(dataset, walker.path,
                                             f"/optimizer_weights/{weight_name}",
                                             bfloat16_marker=False, values_read=False)
        tensors.append(TensorInfo(
            key=f"optimizer_weights/{_SUFFIX.sub('', weight_name)}", shape=shape, dtype=dtype,
            device=None, nbytes=nbytes, storage=f"optimizer_weights/{weight_name}",
            kind="optimizer_slot" if shape else "other", trainable=False))
    return tensors


def _config_text(value: Any, path: str) -> str:
    """The model_config attribute as load_model_from_hdf5 reads it: text, or bytes decoded as
    strict UTF-8 (anything else makes its JSON decoding fail)."""
    if hasattr(value, "decode"):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            raise CorruptFileError(f"{path}: the model_config attribute is not UTF-8, which "
                                   "Keras' load_model cannot decode") from None
    if not isinstance(value, str):
        raise CorruptFileError(f"{path}: the model_config attribute is a "
                               f"{type(value).__name__}, not JSON text: Keras' load_model "
                               "cannot read it")
    return value


def _attr_text(obj: Any, name: str, path: str) -> str | None:
    value = read_attribute(obj, name, path)
    return None if value is None else as_text(value)
