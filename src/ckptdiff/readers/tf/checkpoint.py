"""Reads tf.train checkpoints (TF1 name-based and TF2 object-based) without TensorFlow.

One format name, ``tf-checkpoint``, covers both: they share the tensor-bundle files and differ
only in how keys are named; ``metadata["tf_checkpoint_kind"]`` says ``"tf1"`` or ``"tf2"``. A TF2
checkpoint is recognised by its ``_CHECKPOINTABLE_OBJECT_GRAPH`` tensor, the only data ever read
from a data shard; the object graph turns positional keys into readable ones (the raw key stays
in ``aliases``). Data shards are otherwise only stat-ed.
"""

from __future__ import annotations

from typing import ClassVar

from ckptdiff.errors import CkptdiffError, UsageError
from ckptdiff.manifest import Manifest
from ckptdiff.readers.base import Location
from ckptdiff.readers.safety import resolve_inside
from ckptdiff.readers.tf.locate import find_prefix, index_of

FORMAT = "tf-checkpoint"


def refuse_key(path: Location, key: str | None, what: str) -> None:
    """TensorFlow checkpoints have no containers: a ``key`` is a usage error."""
    if key is not None:
        raise UsageError(
            f"{path}: --key {key!r} does not apply: a {what} is one set of variables, with no "
            "container to pick")


class TFCheckpointReader:
    """tf.train checkpoints: a prefix, its ``.index``, or a directory with a ``checkpoint`` file."""

    name: ClassVar[str] = FORMAT
    extensions: ClassVar[tuple[str, ...]] = (".index",)
    description: ClassVar[str] = (
        "TensorFlow tf.train checkpoint, TF1 or TF2 (prefix, .index, or checkpoint directory)")
    requires: ClassVar[tuple[str, ...]] = ()
    extra: ClassVar[str | None] = None

    def sniff(self, head: bytes, path: Location) -> bool:
        """True for a checkpoint prefix, its files, or a directory naming one."""
        try:
            return find_prefix(path, str(path)) is not None
        except CkptdiffError:
            return True  # it names a checkpoint, a broken one: read() says what is wrong
        except OSError:
            return False

    def read(self, path: Location, key: str | None = None) -> Manifest:
        """Parse the ``.index`` (and the TF2 object graph) into a manifest."""
        # Parsing needs protobuf: imported here so that loading the registry stays cheap.
        from ckptdiff.readers.tf.bundle import read_bundle
        from ckptdiff.readers.tf.manifest import bundle_manifest_parts

        refuse_key(path, key, "TensorFlow checkpoint")
        display = str(path)
        prefix = find_prefix(path, display)
        if prefix is None:
            raise CkptdiffError(f"{display}: not a TensorFlow checkpoint prefix or directory")
        # Nothing is read through a path (a state file's, a symlink) leading out of the folder.
        folder = path if path.is_dir() else path.parent
        index = resolve_inside(folder, index_of(prefix), display, index_of(prefix).name)
        bundle = read_bundle(index, prefix, display)
        for shard_id in range(bundle.num_shards):
            shard = bundle.shard_path(shard_id)
            if shard.exists() or shard.is_symlink():
                resolve_inside(folder, shard, display, f"data shard {shard.name}")
        tensors, metadata, _ = bundle_manifest_parts(bundle, display)
        metadata = {"checkpoint_prefix": prefix.name, **metadata}
        return Manifest(path=display, format=FORMAT, tensors=tuple(tensors), metadata=metadata)
