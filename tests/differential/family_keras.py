"""Keras HDF5 files (Keras 3 ``.weights.h5`` and legacy ``.h5``) against Keras' own walk of them
through h5py, as ``saving_lib.H5IOStore`` and ``legacy_h5_format.load_weights_from_hdf5_group``
read a file (keras/src/saving/saving_lib.py, keras/src/legacy/saving/legacy_h5_format.py).

Keras' loaders are driven by a model: they read the paths its layers ask for. The loader side
here stands for the model the file was saved from: it asks for every saved layer, and reads each
variable the way Keras does (``safe_get_h5_group`` / ``safe_get_h5_dataset``, then
``np.array``), so whatever h5py or those checks refuse is refused here. Keras itself is not
imported (it brings TensorFlow): the checks are copied from Keras 3.15's source.

Keys: Keras keys nothing by name (a ``.weights.h5`` stores variables by position, a legacy file by
``weight_names`` order); ckptdiff names them from the layer names and classes. The loader side
names the datasets it read with ckptdiff's naming functions (``saved_layer_tensors``,
``named_tensors``), so the comparison is of which datasets are read, at which path and with which
shape and dtype, not of the naming rule itself.
"""

from __future__ import annotations

import json
import math
import random
import signal
from typing import Any

from tests.differential import keras_edits
from tests.differential.families import Data, Family, Seed
from tests.differential.keras_seeds import keras_seed_files
from tests.differential.sides import Reading

# ckptdiff's manifests spell a name's lone surrogates (HDF5 names that are not UTF-8) as
# backslash escapes (readers.safety.writable_manifest): that spelling is its key space
from ckptdiff.readers.safety import utf8_text

_BOMB_FLOOR = 1 << 32  # saving_lib._H5_DATASET_BOMB_FLOOR_BYTES
_BOMB_EXPANSION = 1000  # saving_lib._H5_DATASET_MAX_EXPANSION
_MATERIALIZE = 64 << 20  # larger values are read one element (their dtype), not whole
_SECONDS = 20  # the HDF5 library can spin forever on a damaged file; SIGALRM ends the worker


def _safe_group(parent: Any, name: str) -> Any:
    """saving_lib.safe_get_h5_group."""
    import h5py

    current = parent
    for part in name.split("/"):
        if not part:
            raise ValueError(f"Invalid path in H5 file: {name}")
        if part not in current:
            raise KeyError(name)
        link = current.get(part, default=None, getclass=True, getlink=True)
        if link in (h5py.ExternalLink, h5py.SoftLink):
            raise ValueError(f"Not allowed: H5 file with {link.__name__}")
        current = current[part]
        if not isinstance(current, h5py.Group):
            raise ValueError(f"Invalid H5 file, expected Group but received {type(current)}")
    return current


def _safe_dataset(group: Any, name: str) -> Any:
    """saving_lib.safe_get_h5_dataset."""
    import h5py

    if "/" in name:
        group_name, name = name.rsplit("/", 1)
        group = _safe_group(group, group_name)
    if name not in group:
        raise KeyError(name)
    link = group.get(name, default=None, getclass=True, getlink=True)
    if link in (h5py.ExternalLink, h5py.SoftLink):
        raise ValueError(f"Not allowed: H5 file with {link.__name__}")
    dataset = group[name]
    if not isinstance(dataset, h5py.Dataset):
        raise ValueError(f"Invalid H5 file, expected Dataset, received {type(dataset)}")
    if dataset.external:
        raise ValueError("Not allowed: H5 file with external Dataset")
    if dataset.is_virtual:
        raise ValueError("Not allowed: H5 file with virtual Dataset")
    declared = math.prod(dataset.shape) * dataset.dtype.itemsize
    if declared > _BOMB_FLOOR and declared > _BOMB_EXPANSION * dataset.id.get_storage_size():
        raise ValueError("Not allowed: a potential decompression/shape bomb")
    return dataset


def _values(dataset: Any, bfloat16: bool) -> Any:
    """``np.array(dataset)`` as Keras reads it (H5IOStore converts a ``bfloat16``-marked one)."""
    import ml_dtypes
    import numpy as np

    source = dataset
    if math.prod(dataset.shape) * dataset.dtype.itemsize > _MATERIALIZE:
        source = dataset[tuple(slice(0, 1) for _ in dataset.shape)]  # the dtype, not the values
    if bfloat16 and "dtype" in dataset.attrs and dataset.attrs["dtype"] == "bfloat16":
        return np.array(source, dtype=ml_dtypes.bfloat16)
    return np.array(source) if bfloat16 else np.asarray(source)


def _facts(dataset: Any, value: Any) -> tuple[tuple[int, ...], str, int | None]:
    import h5py

    from ckptdiff.dtypes import NUMPY_DTYPES

    kind = value.dtype.kind
    if kind in "SU" or (kind == "O" and h5py.check_string_dtype(dataset.dtype) is not None):
        dtype = "string"
    elif value.dtype.names is None and value.dtype.subdtype is None:  # bfloat16's kind is V
        dtype = NUMPY_DTYPES.get(value.dtype.name, "other")
    else:  # other objects (references, variable-length numbers), compounds, opaque bytes
        dtype = "other"
    return tuple(int(d) for d in dataset.shape), dtype, None


def _keras3_layers(root: Any) -> list[Any]:
    """Every saved layer, read as H5IOStore.get(path) + Layer.load_own_variables read it."""
    import h5py

    from ckptdiff.readers.keras.hdf5 import as_text
    from ckptdiff.readers.keras.saved_layers import SavedLayer, SavedVariable

    found: list[SavedLayer] = []
    pending: list[tuple[Any, tuple[str, ...], tuple[Any, ...]]] = [(root, (), ())]
    while pending:
        group, path, ancestors = pending.pop()
        for name in group:
            link = group.get(name, default=None, getclass=True, getlink=True)
            if link in (h5py.ExternalLink, h5py.SoftLink):  # on a path the model walks
                raise ValueError(f"Not allowed: H5 file with {link.__name__}")
            if name == "vars":
                variables = _safe_group(group, "vars")
                # _check_load_own_variables: the layer has len(vars) variables, read as 0, 1, …
                read = []
                for index in range(len(variables.keys())):
                    dataset = _safe_dataset(variables, str(index))
                    shape, dtype, _ = _facts(dataset, _values(dataset, True))
                    read.append(SavedVariable(index=str(index), shape=shape, dtype=dtype,
                                              nbytes=None))
                try:  # ckptdiff names layers by this attribute; Keras never reads it
                    raw = variables.attrs.get("name")
                except Exception:  # noqa: BLE001 - an unreadable name only changes naming
                    raw = None
                found.append(SavedLayer(path, None if raw is None else as_text(raw),
                                        tuple(read)))
            # the model that saved the file holds no layer inside itself: a hard link back to
            # a containing group (a cycle) is a path no model asks for
            elif isinstance(member := group[name], h5py.Group) and member.id != group.id and (
                    member.id not in ancestors):
                pending.append((member, (*path, name), (*ancestors, group.id)))
    return found


def load_keras3(path: str) -> Reading:
    """Keras 3 ``load_weights`` of a ``.weights.h5`` file into the model that saved it."""
    import h5py

    from ckptdiff.readers.keras.saved_layers import saved_layer_tensors

    signal.alarm(_SECONDS)
    try:
        with h5py.File(path, "r") as root:
            layers = _keras3_layers(root)
    finally:
        signal.alarm(0)
    tensors = saved_layer_tensors(layers)
    return Reading(True, tuple(sorted((utf8_text(t.key), t.shape, t.dtype) for t in tensors)))


def _attribute_list(group: Any, name: str) -> list[Any]:
    """legacy_h5_format.load_attributes_from_hdf5_group."""
    if name in group.attrs:
        return [n.decode("utf8") if hasattr(n, "decode") else n for n in group.attrs[name]]
    data: list[Any] = []
    chunk = 0
    while f"{name}{chunk}" in group.attrs:
        data.extend(n.decode("utf8") if hasattr(n, "decode") else n
                    for n in group.attrs[f"{name}{chunk}"])
        chunk += 1
    return data


def _legacy_weights(group: Any, where: str) -> list[tuple[str, Any]]:
    """load_subset_weights_from_hdf5_group: (weight name, facts) of each ``weight_names`` entry."""
    out = []
    for weight_name in _attribute_list(group, "weight_names"):
        dataset = _safe_dataset(group, weight_name)
        out.append((weight_name, _facts(dataset, _values(dataset, False))))
    return out


def _legacy_stored(root: Any) -> tuple[list[Any], list[tuple[str, Any]], str | None]:
    """The weights ``load_weights`` (or, for a full model, ``load_model``) reads."""
    from ckptdiff.readers.keras.legacy import stored_weight

    full = "layer_names" not in root.attrs and "model_weights" in root
    group = _safe_group(root, "model_weights") if full else root
    prefix = "model_weights/" if full else ""
    config = None
    if full and root.attrs.get("model_config") is not None:
        config = root.attrs.get("model_config")
        config = config.decode("utf-8") if hasattr(config, "decode") else config
        json.loads(config)  # load_model's json_utils.decode refuses what json refuses
    names = _attribute_list(group, "layer_names")
    if not names and not any(a.startswith("layer_names") for a in group.attrs):
        raise ValueError("Layer count mismatch: the file lists no layers")
    stored = []
    for name in names:
        layer_group = _safe_group(group, name)
        for weight_name, facts in _legacy_weights(layer_group, f"{prefix}{name}"):
            stored.append(stored_weight(name, (name,), weight_name, facts,
                                        f"{prefix}{name}/{weight_name}"))
    if "top_level_model_weights" in group:
        top = _safe_group(group, "top_level_model_weights")
        stored.extend(stored_weight("", (), weight_name, facts, "")
                      for weight_name, facts in _legacy_weights(top, ""))
    optimizer: list[tuple[str, Any]] = []
    if full and "optimizer_weights" in root:  # load_optimizer_weights_from_hdf5_group
        slots = _safe_group(root, "optimizer_weights")
        for weight_name in _attribute_list(slots, "weight_names"):
            dataset = _safe_dataset(slots, weight_name)
            optimizer.append((weight_name, _facts(dataset, dataset)))  # values not read
    return stored, optimizer, config


def load_legacy(path: str) -> Reading:
    """Keras' legacy HDF5 loading of a ``.h5`` file into the model that saved it."""
    import re

    import h5py

    from ckptdiff.readers.keras.config import parse_config
    from ckptdiff.readers.keras.legacy import named_tensors

    signal.alarm(_SECONDS)
    try:
        with h5py.File(path, "r") as root:
            stored, optimizer, config_text = _legacy_stored(root)
    finally:
        signal.alarm(0)
    config = None if config_text is None else parse_config(config_text, path, "model_config")
    out = [(t.key, t.shape, t.dtype) for t in named_tensors(stored, config)]
    # ckptdiff's key of an optimizer slot: its weight name without TensorFlow's ":0"
    out += [(f"optimizer_weights/{re.sub(r':[0-9]+$', '', name)}", shape, dtype)
            for name, (shape, dtype, _) in optimizer]
    return Reading(True, tuple(sorted((utf8_text(key), shape, dtype) for key, shape, dtype in out)))


def seeds() -> list[Seed]:
    """Files Keras 3 wrote (tests/differential/keras_seeds.py)."""
    return [Seed(name, "keras-weights-h5" if name.startswith("keras3/") else "keras-h5", data,
                 ".weights.h5" if name.startswith("keras3/") else ".h5")
            for name, data in keras_seed_files().items()]


def mutate(seed: Seed, others: list[Seed], rng: random.Random) -> tuple[str, Data]:
    """An HDF5 edit (tests/differential/keras_edits.py)."""
    assert isinstance(seed.data, bytes)
    return keras_edits.mutate(seed.data, rng)


def _keras3_seeds() -> list[Seed]:
    return [s for s in seeds() if s.family == "keras-weights-h5"]


def _legacy_seeds() -> list[Seed]:
    return [s for s in seeds() if s.family == "keras-h5"]


_IMPORTS = ("h5py", "numpy", "ml_dtypes", "ckptdiff.readers.keras.legacy")
FAMILIES = [
    Family("keras-weights-h5", _keras3_seeds, mutate, load_keras3, imports=_IMPORTS,
           memory=2 << 30),
    Family("keras-h5", _legacy_seeds, mutate, load_legacy, imports=_IMPORTS, memory=2 << 30),
]
