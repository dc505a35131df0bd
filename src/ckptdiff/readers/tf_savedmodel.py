"""Reads TensorFlow SavedModel directories without TensorFlow.

Variables come from ``variables/variables.index`` (a TF2 object-based checkpoint) and are named by
its object graph, exactly as a ``tf-checkpoint`` read names them. ``saved_model.pb``'s
SavedObjectGraph has the same nodes in the same order; its ``SavedVariable`` records add each
variable's own name and whether it is trainable. Signatures go to ``metadata["signatures"]``.
Nothing is read through a symlink that leaves the SavedModel directory.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

from ckptdiff.errors import CkptdiffError, CorruptFileError
from ckptdiff.manifest import Manifest, TensorInfo
from ckptdiff.proto.saved_model_pb2 import SavedObjectGraph
from ckptdiff.readers.tf_bundle import read_bundle
from ckptdiff.readers.tf_checkpoint import bundle_manifest_parts, refuse_key
from ckptdiff.readers.tf_locate import index_of
from ckptdiff.readers.tf_metagraph import read_saved_model_proto
from ckptdiff.readers.tf_signatures import signatures_json

FORMAT = "tf-savedmodel"
SAVED_MODEL_PB = "saved_model.pb"
SAVED_MODEL_PBTXT = "saved_model.pbtxt"
VARIABLES_PREFIX = "variables/variables"


def saved_model_root(path: Path) -> Path | None:
    """The SavedModel directory ``path`` designates (the directory or its saved_model.pb)."""
    if path.is_dir():
        if (path / SAVED_MODEL_PB).is_file() or (path / SAVED_MODEL_PBTXT).is_file():
            return path
        return None
    if path.name == SAVED_MODEL_PB and path.is_file():
        return path.parent
    return None


def contained(root: Path, target: Path, display: str) -> Path:
    """``target`` if it resolves inside ``root``; a link out of the directory is refused."""
    real_root = root.resolve()
    real = target.resolve()
    if real != real_root and real_root not in real.parents:
        raise CkptdiffError(
            f"{display}: refused: {target.relative_to(root)} is a link leading out of the "
            "SavedModel directory")
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


def _variables(root: Path, display: str) -> tuple[list[TensorInfo], dict[str, Any],
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


class TFSavedModelReader:
    """SavedModel directories (``saved_model.pb`` + ``variables/``), or their saved_model.pb."""

    name: ClassVar[str] = FORMAT
    extensions: ClassVar[tuple[str, ...]] = (SAVED_MODEL_PB,)
    description: ClassVar[str] = "TensorFlow SavedModel directory (variables and signatures)"
    requires: ClassVar[tuple[str, ...]] = ()
    extra: ClassVar[str | None] = None

    def sniff(self, head: bytes, path: Path) -> bool:
        """A directory holding ``saved_model.pb`` (or .pbtxt), or that file itself."""
        try:
            return saved_model_root(path) is not None
        except OSError:
            return False

    def read(self, path: Path, key: str | None = None) -> Manifest:
        """Variables named through the object graph, with trainability and signatures."""
        refuse_key(path, key, "SavedModel")
        display = str(path)
        root = saved_model_root(path)
        if root is None:
            raise CkptdiffError(f"{display}: not a SavedModel directory (no {SAVED_MODEL_PB})")
        pb = root / SAVED_MODEL_PB
        if not pb.is_file():
            raise CkptdiffError(
                f"{display}: only a text {SAVED_MODEL_PBTXT} is there; ckptdiff reads binary "
                f"{SAVED_MODEL_PB} SavedModels")
        saved = read_saved_model_proto(contained(root, pb, display), display)
        tensors, metadata, node_keys = _variables(root, display)
        objects = saved.meta_graph.object_graph
        if node_keys is not None and objects is not None:
            if len(objects.nodes) != metadata.get("object_graph_nodes"):
                raise CorruptFileError(
                    f"{display}: saved_model.pb has {len(objects.nodes)} objects but the "
                    f"variables' object graph has {metadata.get('object_graph_nodes')}")
            tensors = apply_saved_variables(tensors, objects, node_keys)
        metadata = {
            **metadata,
            "bytes_read": metadata["bytes_read"] + saved.bytes_read,
            "saved_model_schema_version": saved.schema_version,
            "meta_graphs": saved.meta_graph_count,
            "tags": sorted(saved.meta_graph.tags),
            "tensorflow_version": saved.meta_graph.tensorflow_version or None,
            "signatures": signatures_json(saved.meta_graph.signatures),
        }
        return Manifest(path=display, format=FORMAT, tensors=tuple(tensors), metadata=metadata)
