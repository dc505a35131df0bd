"""Walk a Keras 3 weights HDF5 file (``.weights.h5``, or ``model.weights.h5`` inside a ``.keras``)
into :class:`SavedLayer` objects, reading group listings, attributes and dataset headers only."""

from __future__ import annotations

from typing import Any

from ckptdiff.errors import CorruptFileError
from ckptdiff.readers.keras.h5_dataset import dataset_facts
from ckptdiff.readers.keras.hdf5 import Walker, as_text, read_attribute
from ckptdiff.readers.keras.saved_layers import SavedLayer, SavedVariable

VARS = "vars"


def hdf5_layout(root: Any, walker: Walker) -> str | None:
    """``"legacy"`` for the legacy Keras layout (``layer_names`` attribute or ``model_weights``),
    ``"keras3"`` for Keras 3's (a ``vars`` group at the top, or one or two levels down: the
    model's own ``vars`` is empty and may be gone, leaving ``layers/dense/vars``), None for other
    HDF5 files. Links are inspected, never followed."""
    names = set(root)
    if "model_weights" in names or any(a.startswith("layer_names") for a in root.attrs):
        return "legacy"
    if _is_hard_group(root, VARS, walker):
        return "keras3"
    groups = [root[name] for name in sorted(names) if _is_hard_group(root, name, walker)]
    if any(_is_hard_group(group, VARS, walker) for group in groups):
        return "keras3"
    for group in groups:
        for name in sorted(group):
            if _is_hard_group(group, name, walker) and _is_hard_group(group[name], VARS, walker):
                return "keras3"
    return None


def _is_hard_group(group: Any, name: str, walker: Walker) -> bool:
    link = group.get(name, getlink=True)
    if link is None or type(link).__name__ != "HardLink":
        return False
    return walker.is_group(group[name])


def saved_layers(root: Any, walker: Walker, storage_prefix: str = "") -> list[SavedLayer]:
    """Every saveable (a group holding ``vars``) under ``root``, with its variables' headers.

    Keras reads the saveables its model names, by path, so a group hard-linked under two names
    is read at both (and listed at both here). A hard link back to a group that contains it
    (a cycle) is not followed: no model holds a layer inside itself, so no model asks for the
    endless paths through it."""
    found: list[SavedLayer] = []
    pending: list[tuple[Any, tuple[str, ...], tuple[Any, ...]]] = [(root, (), ())]
    while pending:
        group, path, ancestors = pending.pop()
        where = "/" + "/".join(path)
        for name, member in walker.children(group, where.rstrip("/")):
            if name == VARS:
                if not walker.is_group(member):
                    raise CorruptFileError(f"{walker.path}: {where.rstrip('/')}/{VARS} is a "
                                           "dataset; Keras reads a layer's variables from a "
                                           "group there")
                found.append(_saved_layer(member, path, walker, storage_prefix))
            elif walker.is_group(member) and member.id != group.id and (
                    member.id not in ancestors):
                pending.append((member, (*path, name), (*ancestors, group.id)))
    return found


def _saved_layer(vars_group: Any, path: tuple[str, ...], walker: Walker,
                 storage_prefix: str) -> SavedLayer:
    where = "/".join((*path, VARS))
    try:
        raw_name = read_attribute(vars_group, "name", walker.path)
    except (OSError, RuntimeError, ValueError, KeyError):
        # Keras never reads the name attribute (ckptdiff names the layer by it): a damaged one
        # leaves the layer named by its saved path, as a file from before Keras 3.15 is
        raw_name = None
    members = dict(walker.children(vars_group, "/" + where))
    variables = []
    # Layer.load_own_variables: as many variables as vars has members, read as "0", "1", …
    for position in range(len(members)):
        index = str(position)
        member = members.get(index)
        if member is None or not walker.is_dataset(member):
            found = "a group" if member is not None else "nothing"
            raise CorruptFileError(
                f"{walker.path}: /{where} has {len(members)} members, so Keras reads its "
                f"variables as 0..{len(members) - 1}, but finds {found} at /{where}/{index}")
        shape, dtype, nbytes = dataset_facts(member, walker.path, f"/{where}/{index}")
        variables.append(SavedVariable(
            index=index, shape=shape, dtype=dtype, nbytes=nbytes,
            storage=f"{storage_prefix}{where}/{index}"))
    return SavedLayer(path=path, name=None if raw_name is None else as_text(raw_name),
                      variables=tuple(variables))
