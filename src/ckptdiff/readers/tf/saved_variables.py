"""The variables of a SavedModel: its ``variables/`` checkpoint named through the object graph.

``saved_model.pb``'s SavedObjectGraph has the same nodes in the same order as the checkpoint's
object graph; its ``SavedVariable`` records add each variable's own name and whether it is
trainable. Nothing is read through a symlink that leaves the SavedModel directory.
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

from ckptdiff.errors import CkptdiffError
from ckptdiff.manifest import TensorInfo
from ckptdiff.readers.base import Location
from ckptdiff.readers.tf.bundle import read_bundle
from ckptdiff.readers.tf.locate import index_of
from ckptdiff.readers.tf.manifest import bundle_manifest_parts
from ckptdiff.readers.tf.proto.saved_model_pb2 import SavedObjectGraph

VARIABLES_PREFIX = "variables/variables"


def contained(root: Location, target: Location, display: str) -> Location:
    """``target`` if it resolves inside ``root``; a link out of the directory is refused."""
    real_root = root.resolve()
    real = target.resolve()
    if real != real_root and real_root not in real.parents:
        raise CkptdiffError(
            f"{display}: refused: {os.path.relpath(str(target), str(root))} is a link leading "
            "out of the SavedModel directory")
    return target


def apply_saved_variables(
    tensors: list[TensorInfo], objects: SavedObjectGraph, node_keys: dict[int, str]
) -> list[TensorInfo]:
    """Overlay each ``SavedVariable``'s name and trainable flag onto its tensor (by node id)."""
    by_raw = {t.aliases[0] if t.aliases else t.key: i for i, t in enumerate(tensors)}
    for node_id, raw in node_keys.items():
        if node_id >= len(objects.nodes) or objects.nodes[node_id].WhichOneof("kind") != "variable":
            continue
        index = by_raw.get(raw)
        if index is None:
            continue
        variable = objects.nodes[node_id].variable
        tensor = tensors[index]
        name = variable.name or tensor.variable_name
        # A variable the SavedModel says is not trainable is model state: a buffer, as in torch.
        kind = "buffer" if not variable.trainable and tensor.kind == "parameter" else tensor.kind
        tensors[index] = replace(tensor, trainable=bool(variable.trainable), kind=kind,
                                 variable_name=None if name == tensor.key else name)
    return tensors


def saved_variables(root: Location, display: str) -> tuple[list[TensorInfo], dict[str, Any],
                                                  dict[int, str] | None]:
    """Tensors and checkpoint metadata of ``variables/``; none when the model has no variables."""
    prefix = root / VARIABLES_PREFIX
    index = index_of(prefix)
    if not index.exists() and not index.is_symlink():
        empty: dict[str, Any] = {
            "tf_checkpoint_kind": None, "num_shards": 0, "shards": [], "bytes_read": 0}
        return [], empty, None
    bundle = read_bundle(contained(root, index, display), prefix, display)
    for shard_id in range(bundle.num_shards):
        shard = bundle.shard_path(shard_id)
        if shard.exists() or shard.is_symlink():
            contained(root, shard, display)
    return bundle_manifest_parts(bundle, display, storage_dir="variables/")
