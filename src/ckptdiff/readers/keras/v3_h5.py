"""Walk a Keras 3 weights HDF5 file (``.weights.h5``, or ``model.weights.h5`` inside a ``.keras``)
into :class:`SavedLayer` objects, reading group listings, attributes and dataset headers only."""

from __future__ import annotations

from typing import Any

from ckptdiff.readers.keras.hdf5 import Walker, as_text, dataset_facts, read_attribute
from ckptdiff.readers.keras.saved_layers import SavedLayer, SavedVariable

VARS = "vars"


def hdf5_layout(root: Any, walker: Walker) -> str | None:
    """``"legacy"`` for the legacy Keras layout (``layer_names`` attribute or ``model_weights``),
    ``"keras3"`` for Keras 3's (a ``vars`` group at the top or one level down), None for other
    HDF5 files. Links are inspected, never followed."""
    names = set(root)
    if "model_weights" in names or any(a.startswith("layer_names") for a in root.attrs):
        return "legacy"
    if _is_hard_group(root, VARS, walker):
        return "keras3"
    for name in sorted(names):
        if _is_hard_group(root, name, walker) and _is_hard_group(root[name], VARS, walker):
            return "keras3"
    return None


def _is_hard_group(group: Any, name: str, walker: Walker) -> bool:
    link = group.get(name, getlink=True)
    if link is None or type(link).__name__ != "HardLink":
        return False
    return walker.is_group(group[name])


def saved_layers(root: Any, walker: Walker, storage_prefix: str = "") -> list[SavedLayer]:
    """Every saveable (a group holding ``vars``) under ``root``, with its variables' headers."""
    found: list[SavedLayer] = []
    seen: set[Any] = set()
    pending: list[tuple[Any, tuple[str, ...]]] = [(root, ())]
    while pending:
        group, path = pending.pop()
        if group.id in seen:  # hard links can make cycles; each group is read once
            continue
        seen.add(group.id)
        where = "/" + "/".join(path)
        for name, member in walker.children(group, where.rstrip("/")):
            if name == VARS and walker.is_group(member):
                found.append(_saved_layer(member, path, walker, storage_prefix))
            elif walker.is_group(member):
                pending.append((member, (*path, name)))
    return found


def _saved_layer(vars_group: Any, path: tuple[str, ...], walker: Walker,
                 storage_prefix: str) -> SavedLayer:
    where = "/".join((*path, VARS))
    raw_name = read_attribute(vars_group, "name", walker.path)
    variables = []
    for index, member in walker.children(vars_group, "/" + where):
        if not walker.is_dataset(member):
            continue
        shape, dtype, nbytes = dataset_facts(member, walker.path)
        variables.append(SavedVariable(
            index=index, shape=shape, dtype=dtype, nbytes=nbytes,
            storage=f"{storage_prefix}{where}/{index}"))
    return SavedLayer(path=path, name=None if raw_name is None else as_text(raw_name),
                      variables=tuple(variables))
