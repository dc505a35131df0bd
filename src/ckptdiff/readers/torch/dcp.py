"""The ``torch-dcp`` reader: ``torch.distributed.checkpoint`` directories, by their headers.

``torch.distributed.checkpoint.save`` writes one ``.metadata`` file (a pickle of ``Metadata``) and
storage files (``__0_0.distcp`` …, one or more per rank). ``.metadata`` lists every key of the
flattened state dict with its global size, dtype and the chunks each rank saved (offsets, sizes),
and where each chunk is stored (a byte range of a storage file holding a ``torch.save`` archive).

torch reads ``.metadata`` with a plain ``pickle.load`` (``FileSystemReader.read_metadata``): any
global runs. ckptdiff reads it through the restricted unpickler with only the DCP classes of
:mod:`ckptdiff.readers.pickle.dcp_records` allowed, so a ``.metadata`` naming anything else is
refused (torch might load it, after running that code). What torch's own load refuses and the
headers show is refused too (tests/differential/family_dcp.py compares both on mutated
checkpoints): state the records' ``__setstate__`` or hashing refuse, a nesting
``set_element`` cannot build or that rebuilds a key with no entry or of another kind or size
(:mod:`.dcp_plan`), a chunk read through a missing ``storage_data`` entry, overlapping read
ranges, or a range that is not the archive of a tensor the chunk can be narrowed and copied from
(:mod:`.dcp_archives`: only the range's zip directory and ``data.pkl`` are read). Left to the
data, and not checked: which values a chunk's bytes hold, and non-tensor values (torch unpickles
them with ``weights_only=False``; ckptdiff never does). Chunks that overlap or leave parts of a
tensor unsaved load in torch (the rest stays uninitialized) and are reported as they are.

Keys are the ones DCP writes: nested dicts flatten with ``.`` (``{"model": sd, "optim": osd}``
saves ``model.layer.weight`` and ``optim.state.0.exp_avg``). The nesting DCP recorded
(``planner_data``) is rebuilt, so containers are chosen as for ``torch.save`` checkpoints:
``model`` is the model, ``optim`` its optimizer slots, and ``--key`` picks another container.
Non-tensor values (``step``, param groups) are counted in metadata, not listed.
"""

from __future__ import annotations

from typing import Any, ClassVar, TypeGuard, cast

from ckptdiff.dtypes import TORCH_DTYPES
from ckptdiff.errors import CkptdiffError, CorruptFileError
from ckptdiff.manifest import Manifest, TensorInfo
from ckptdiff.readers.base import CountingFile, Location, read_exact
from ckptdiff.readers.pickle.dcp_records import DCP_GLOBALS, MetadataRecord
from ckptdiff.readers.pickle.records import torch_dtype_bits
from ckptdiff.readers.pickle.unpickler import MAX_PICKLE_BYTES, LoadSession, load_pickle
from ckptdiff.readers.safety import is_lfs_pointer, lfs_pointer_error, resolve_inside
from ckptdiff.readers.torch.containers import Found, select_tensors
from ckptdiff.readers.torch.dcp_layout import (
    DcpTensor,
    check_storage,
    storage_entries,
    tensors_of,
)
from ckptdiff.readers.torch.dcp_plan import plan

METADATA_FILE = ".metadata"
_BUFFER_NAMES = frozenset(
    {"running_mean", "running_var", "num_batches_tracked", "position_ids", "inv_freq"})


def is_dcp_tensor(value: object) -> TypeGuard[DcpTensor]:
    """True for a tensor entry of the rebuilt state dict."""
    return isinstance(value, DcpTensor)


class TorchDcpReader:
    """``torch.distributed.checkpoint`` directories (``.metadata`` + ``*.distcp``)."""

    name: ClassVar[str] = "torch-dcp"
    extensions: ClassVar[tuple[str, ...]] = (METADATA_FILE,)
    description: ClassVar[str] = (
        "PyTorch distributed checkpoint (torch.distributed.checkpoint directory)")
    requires: ClassVar[tuple[str, ...]] = ()
    extra: ClassVar[str | None] = None

    def sniff(self, head: bytes, path: Location) -> bool:
        """A directory holding ``.metadata``, or that file (a ``.distcp`` storage file is a
        torch zip of one rank's data: the ``torch-zip`` reader's, and not the checkpoint)."""
        if not head:
            return path.is_dir() and (path / METADATA_FILE).is_file()
        return path.name == METADATA_FILE and head.startswith(b"\x80")

    def read(self, path: Location, key: str | None = None) -> Manifest:
        """Global shapes and dtypes of every tensor, with how they are chunked and stored."""
        folder = path if path.is_dir() else path.parent
        display = str(path)
        try:
            metadata_file = resolve_inside(folder, folder / METADATA_FILE, display,
                                           METADATA_FILE)
            root, bytes_read = _load_metadata(metadata_file, display)
            storage = storage_entries(root, display)
            tensors, non_tensors = tensors_of(root, storage, display)
            entries: dict[str, object] = root.get("state_dict_metadata")  # type: ignore[assignment]
            state, reads = plan(entries, tensors, root.get("planner_data"), display)
            files, archive_bytes = check_storage(storage, reads, folder, display)
        except OSError as exc:
            raise CkptdiffError(f"{path}: cannot read: {exc.strerror or exc}") from None
        selection = select_tensors(state, is_dcp_tensor, key, display)
        found = [(f, False) for f in selection.model] + [(f, True) for f in selection.optimizer]
        metadata: dict[str, Any] = dict(selection.metadata)
        chunked = {f.key: t.chunk_json() for f, _ in found if len((t := f.tensor).chunks) > 1}
        metadata.update({
            "dcp_version": root.get("version") if isinstance(root.get("version"), str) else None,
            "storage_files": files,
            "non_tensor_entries": len(non_tensors),
            "chunks": sum(len(t.chunks) for t in tensors.values()),
        })
        if chunked:
            metadata["sharded_tensors"] = chunked
        metadata["bytes_read"] = bytes_read + archive_bytes
        return Manifest(path=str(path), format=self.name,
                        tensors=tuple(_info(f, slot) for f, slot in found),
                        container_key=selection.container_key, metadata=metadata)


def _load_metadata(file: Location, display: str) -> tuple[MetadataRecord, int]:
    with CountingFile(file) as handle:
        if handle.size > MAX_PICKLE_BYTES:
            raise CorruptFileError(f"{display}: {METADATA_FILE} is {handle.size:,} bytes, more "
                                   "than checkpoint metadata can need")
        data = read_exact(cast(Any, handle), handle.size, METADATA_FILE, display)
        bytes_read = handle.bytes_read
    if is_lfs_pointer(data):
        raise lfs_pointer_error(display, METADATA_FILE)
    root = load_pickle(data, LoadSession(legacy=False), display, METADATA_FILE,
                       extra_globals=DCP_GLOBALS)
    if not isinstance(root, MetadataRecord) or not isinstance(
            root.get("state_dict_metadata"), dict):
        raise CorruptFileError(f"{display}: {METADATA_FILE} does not hold a "
                               "torch.distributed.checkpoint Metadata object")
    return root, bytes_read


def _info(found: Found[DcpTensor], optimizer_slot: bool) -> TensorInfo:
    tensor = found.tensor
    if optimizer_slot:
        kind = "optimizer_slot"
    else:
        kind = "buffer" if found.key.rsplit(".", 1)[-1] in _BUFFER_NAMES else "parameter"
    numel = 1
    for dim in tensor.shape:
        numel *= dim
    bits = torch_dtype_bits(tensor.dtype)
    return TensorInfo(
        key=found.key, shape=tensor.shape, dtype=TORCH_DTYPES.get(tensor.dtype, "other"),
        device=None, nbytes=None if bits is None else numel * bits // 8,
        storage=tensor.storage, aliases=(), kind=kind, trainable=None, slot_of=found.slot_of)
