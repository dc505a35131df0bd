"""Reads TensorFlow SavedModel directories without TensorFlow.

Variables come from ``variables/variables.index`` (a TF2 object-based checkpoint) and are named by
its object graph, exactly as a ``tf-checkpoint`` read names them. ``saved_model.pb``'s
SavedObjectGraph has the same nodes in the same order; its ``SavedVariable`` records add each
variable's own name and whether it is trainable. Signatures go to ``metadata["signatures"]``.
Nothing is read through a symlink that leaves the SavedModel directory.
"""

from __future__ import annotations

from typing import ClassVar

from ckptdiff.errors import CkptdiffError, CorruptFileError
from ckptdiff.manifest import Manifest
from ckptdiff.readers.base import Location
from ckptdiff.readers.safety import check_lfs_pointer
from ckptdiff.readers.tf.checkpoint import refuse_key

FORMAT = "tf-savedmodel"
SAVED_MODEL_PB = "saved_model.pb"
SAVED_MODEL_PBTXT = "saved_model.pbtxt"


def saved_model_root(path: Location) -> Location | None:
    """The SavedModel directory ``path`` designates (the directory or its saved_model.pb)."""
    if path.is_dir():
        if (path / SAVED_MODEL_PB).is_file() or (path / SAVED_MODEL_PBTXT).is_file():
            return path
        return None
    if path.name == SAVED_MODEL_PB and path.is_file():
        return path.parent
    return None


class TFSavedModelReader:
    """SavedModel directories (``saved_model.pb`` + ``variables/``), or their saved_model.pb."""

    name: ClassVar[str] = FORMAT
    extensions: ClassVar[tuple[str, ...]] = (SAVED_MODEL_PB,)
    description: ClassVar[str] = "TensorFlow SavedModel directory (variables and signatures)"
    requires: ClassVar[tuple[str, ...]] = ()
    extra: ClassVar[str | None] = None

    def sniff(self, head: bytes, path: Location) -> bool:
        """A directory holding ``saved_model.pb`` (or .pbtxt), or that file itself."""
        try:
            return saved_model_root(path) is not None
        except OSError:
            return False

    def read(self, path: Location, key: str | None = None) -> Manifest:
        """Variables named through the object graph, with trainability and signatures."""
        # Parsing needs protobuf: imported here so that loading the registry stays cheap.
        from ckptdiff.readers.tf.metagraph import read_saved_model_proto
        from ckptdiff.readers.tf.saved_variables import (
            apply_saved_variables,
            contained,
            saved_variables,
        )
        from ckptdiff.readers.tf.signatures import signatures_json

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
        try:
            saved = read_saved_model_proto(contained(root, pb, display), display)
        except CorruptFileError:
            check_lfs_pointer(pb, display, SAVED_MODEL_PB)  # says so when it is one
            raise
        tensors, metadata, graph = saved_variables(root, display)
        objects = saved.meta_graph.object_graph
        if graph is not None and objects is not None:
            tensors = apply_saved_variables(tensors, objects, graph)
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
