"""The variables of a SavedModel: its ``variables/`` checkpoint named through the object graph.

``saved_model.pb``'s SavedObjectGraph and the checkpoint's object graph describe the same objects,
but not always with the same nodes: functions, assets, resources and constants are SavedModel
nodes the checkpoint may lack, and other TensorFlow/Keras versions order the nodes differently.
TensorFlow's loader restores the checkpoint by walking both graphs from the root along children's
names, so the nodes are paired the same way here (never by node id), and each paired
``SavedVariable`` adds its variable's own name and whether it is trainable. Nothing is read
through a symlink that leaves the SavedModel directory.
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
from ckptdiff.readers.tf.manifest import bundle_manifest_parts, variable_keys
from ckptdiff.readers.tf.proto.saved_model_pb2 import SavedObjectGraph
from ckptdiff.readers.tf.proto.trackable_object_graph_pb2 import TrackableObjectGraph

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


def paired_nodes(graph: TrackableObjectGraph, objects: SavedObjectGraph) -> dict[int, int]:
    """Checkpoint node id -> SavedModel node id, paired by walking both graphs from the root
    along children's local names (as TensorFlow's restore matches them)."""
    if not graph.nodes or not objects.nodes:
        return {}
    pairs = {0: 0}
    queue = [0]
    while queue:
        node_id = queue.pop()
        saved_children = {child.local_name: child.node_id
                          for child in objects.nodes[pairs[node_id]].children}
        for child in graph.nodes[node_id].children:
            saved_id = saved_children.get(child.local_name)
            if (saved_id is None or child.node_id in pairs or child.node_id >= len(graph.nodes)
                    or saved_id >= len(objects.nodes)):
                continue
            pairs[child.node_id] = saved_id
            queue.append(child.node_id)
    return pairs


def apply_saved_variables(
    tensors: list[TensorInfo], objects: SavedObjectGraph, graph: TrackableObjectGraph
) -> list[TensorInfo]:
    """Overlay each ``SavedVariable``'s name and trainable flag onto its tensor."""
    by_raw = {t.aliases[0] if t.aliases else t.key: i for i, t in enumerate(tensors)}
    pairs = paired_nodes(graph, objects)
    for node_id, raw in variable_keys(graph).items():
        saved_id = pairs.get(node_id)
        if saved_id is None or objects.nodes[saved_id].WhichOneof("kind") != "variable":
            continue
        index = by_raw.get(raw)
        if index is None:
            continue
        variable = objects.nodes[saved_id].variable
        tensor = tensors[index]
        name = variable.name or tensor.variable_name
        # A variable the SavedModel says is not trainable is model state: a buffer, as in torch.
        kind = "buffer" if not variable.trainable and tensor.kind == "parameter" else tensor.kind
        tensors[index] = replace(tensor, trainable=bool(variable.trainable), kind=kind,
                                 variable_name=None if name == tensor.key else name)
    return tensors


def saved_variables(root: Location, display: str) -> tuple[list[TensorInfo], dict[str, Any],
                                                  TrackableObjectGraph | None]:
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
