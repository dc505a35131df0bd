"""Turns a checkpoint bundle into manifest parts: tensors, metadata, and the TF2 object graph.

Shared by the ``tf-checkpoint`` and ``tf-savedmodel`` readers. Data shards are stat-ed; the only
data read is a TF2 checkpoint's ``_CHECKPOINTABLE_OBJECT_GRAPH`` tensor.
"""

from __future__ import annotations

from typing import Any

from ckptdiff.manifest import TensorInfo
from ckptdiff.readers.tf.bundle import Bundle, check_shards, parse_proto
from ckptdiff.readers.tf.objectgraph import (
    VARIABLE_VALUE,
    TensorNaming,
    all_paths,
    name_tensors,
    optimizer_nodes,
)
from ckptdiff.readers.tf.proto.trackable_object_graph_pb2 import TrackableObjectGraph
from ckptdiff.readers.tf.stringtensor import read_string_scalar
from ckptdiff.readers.tf.tensors import OBJECT_GRAPH_KEY, tensor_infos


def read_object_graph(bundle: Bundle, display: str) -> tuple[TrackableObjectGraph, int]:
    """The TF2 bundle's object graph, and how many bytes were read for it."""
    data, bytes_read = read_string_scalar(bundle, bundle.entries[OBJECT_GRAPH_KEY], display)
    return parse_proto(TrackableObjectGraph, data, "the object graph", display), bytes_read


def variable_keys(graph: TrackableObjectGraph) -> dict[int, str]:
    """Object-graph node id -> raw checkpoint key of the variable value it holds."""
    return {node_id: attr.checkpoint_key for node_id, node in enumerate(graph.nodes)
            for attr in node.attributes if attr.name == VARIABLE_VALUE}


def bundle_manifest_parts(
    bundle: Bundle, display: str, storage_dir: str = ""
) -> tuple[list[TensorInfo], dict[str, Any], TrackableObjectGraph | None]:
    """Tensors and metadata of a bundle, plus (TF2 only) its object graph."""
    shard_names = check_shards(bundle, display)
    metadata: dict[str, Any] = {
        "tf_checkpoint_kind": "tf1",
        "num_shards": bundle.num_shards,
        "shards": [storage_dir + shard_names[i] for i in sorted(shard_names)],
        "endianness": "big" if bundle.big_endian else "little",
        "index_compression": "snappy" if bundle.compressed_blocks else "none",
    }
    bytes_read = bundle.bytes_read
    namings: dict[str, TensorNaming] | None = None
    graph: TrackableObjectGraph | None = None
    if OBJECT_GRAPH_KEY in bundle.entries:
        graph, graph_bytes = read_object_graph(bundle, display)
        namings = name_tensors(graph, display)
        other_paths = _other_paths(graph, namings)
        if other_paths:
            metadata["object_paths"] = other_paths
        bytes_read += graph_bytes
        metadata["tf_checkpoint_kind"] = "tf2"
        metadata["object_graph_nodes"] = len(graph.nodes)
    metadata["bytes_read"] = bytes_read
    return tensor_infos(bundle, shard_names, namings, storage_dir), metadata, graph


def _other_paths(graph: TrackableObjectGraph,
                 namings: dict[str, TensorNaming]) -> dict[str, list[str]]:
    """Variable key -> the other object paths that reach it (restore follows them all)."""
    paths = all_paths(graph, optimizer_nodes(graph))
    found: dict[str, list[str]] = {}
    for node_id, raw in variable_keys(graph).items():
        naming = namings.get(raw)
        others = [p for p in paths.get(node_id, ()) if naming and p != naming.key]
        if naming is not None and others:
            found[naming.key] = others
    return found
