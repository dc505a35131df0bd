"""Reads tf.train checkpoints (TF1 name-based and TF2 object-based) without TensorFlow.

One format name, ``tf-checkpoint``, covers both: they share the tensor-bundle files and differ
only in how keys are named; ``metadata["tf_checkpoint_kind"]`` says ``"tf1"`` or ``"tf2"``. A TF2
checkpoint is recognised by its ``_CHECKPOINTABLE_OBJECT_GRAPH`` tensor, the only data ever read
from a data shard; the object graph turns positional keys into readable ones (the raw key stays
in ``aliases``). Data shards are otherwise only stat-ed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from ckptdiff.errors import CkptdiffError, UsageError
from ckptdiff.manifest import Manifest, TensorInfo
from ckptdiff.proto.trackable_object_graph_pb2 import TrackableObjectGraph
from ckptdiff.readers.tf_bundle import Bundle, check_shards, parse_proto, read_bundle
from ckptdiff.readers.tf_locate import find_prefix, index_of
from ckptdiff.readers.tf_objectgraph import VARIABLE_VALUE, TensorNaming, name_tensors
from ckptdiff.readers.tf_stringtensor import read_string_scalar
from ckptdiff.readers.tf_tensors import OBJECT_GRAPH_KEY, tensor_infos

FORMAT = "tf-checkpoint"


def refuse_key(path: Path, key: str | None, what: str) -> None:
    """TensorFlow checkpoints have no containers: a ``key`` is a usage error."""
    if key is not None:
        raise UsageError(
            f"{path}: --key {key!r} does not apply: a {what} is one set of variables, with no "
            "container to pick")


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
) -> tuple[list[TensorInfo], dict[str, Any], dict[int, str] | None]:
    """Tensors and metadata of a bundle, plus (TF2 only) node id -> raw key of each variable."""
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
    node_keys: dict[int, str] | None = None
    if OBJECT_GRAPH_KEY in bundle.entries:
        graph, graph_bytes = read_object_graph(bundle, display)
        namings, node_keys = name_tensors(graph, display), variable_keys(graph)
        bytes_read += graph_bytes
        metadata["tf_checkpoint_kind"] = "tf2"
        metadata["object_graph_nodes"] = len(graph.nodes)
    metadata["bytes_read"] = bytes_read
    return tensor_infos(bundle, shard_names, namings, storage_dir), metadata, node_keys


class TFCheckpointReader:
    """tf.train checkpoints: a prefix, its ``.index``, or a directory with a ``checkpoint`` file."""

    name: ClassVar[str] = FORMAT
    extensions: ClassVar[tuple[str, ...]] = (".index",)
    description: ClassVar[str] = (
        "TensorFlow tf.train checkpoint, TF1 or TF2 (prefix, .index, or checkpoint directory)")
    requires: ClassVar[tuple[str, ...]] = ()
    extra: ClassVar[str | None] = None

    def sniff(self, head: bytes, path: Path) -> bool:
        """True for a checkpoint prefix, its files, or a directory naming one."""
        try:
            return find_prefix(path, str(path)) is not None
        except CkptdiffError:
            return True  # it names a checkpoint, a broken one: read() says what is wrong
        except OSError:
            return False

    def read(self, path: Path, key: str | None = None) -> Manifest:
        """Parse the ``.index`` (and the TF2 object graph) into a manifest."""
        refuse_key(path, key, "TensorFlow checkpoint")
        display = str(path)
        prefix = find_prefix(path, display)
        if prefix is None:
            raise CkptdiffError(f"{display}: not a TensorFlow checkpoint prefix or directory")
        bundle = read_bundle(index_of(prefix), prefix, display)
        tensors, metadata, _ = bundle_manifest_parts(bundle, display)
        metadata = {"checkpoint_prefix": prefix.name, **metadata}
        return Manifest(path=display, format=FORMAT, tensors=tuple(tensors), metadata=metadata)
