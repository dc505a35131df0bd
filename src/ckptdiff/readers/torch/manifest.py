"""Turning the records of a torch checkpoint into a :class:`Manifest` (shared by both formats).

- ``kind``: tensors in optimizer state are ``optimizer_slot``; model tensors are ``buffer`` when
  their last name component is a well-known buffer (:data:`BUFFER_NAMES`) and they were not saved
  as ``nn.Parameter``, else ``parameter``.
- ``trainable``: ``requires_grad`` for tensors saved as ``nn.Parameter`` objects, else ``null``
  (a state dict's tensors are detached and do not say).
- ``device``: the storage's location tag (``cpu``, ``cuda:0``, ``mps``; a bare ``cuda`` reads as
  ``cuda:0``); ``meta`` for meta tensors.
- ``nbytes``: numel × itemsize; for sparse tensors, the bytes their index and value tensors hold.
- ``aliases``: the other listed keys whose tensors use the same storage (tied weights and views).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ckptdiff.dtypes import TORCH_DTYPES
from ckptdiff.errors import CorruptFileError
from ckptdiff.manifest import Manifest, TensorInfo
from ckptdiff.readers.base import Location
from ckptdiff.readers.pickle.numpy_records import OpaqueRecord
from ckptdiff.readers.pickle.records import StorageRecord, TensorRecord, is_tensor
from ckptdiff.readers.pickle.unpickler import LoadSession
from ckptdiff.readers.torch.containers import Found, select_tensors

# The same list the safetensors reader uses, so both formats classify a state dict alike.
BUFFER_NAMES = frozenset(
    {"running_mean", "running_var", "num_batches_tracked", "position_ids", "inv_freq"}
)


# ckptdiff reads these names as data (torch_numpy, torch_hparams); torch's safe loader does not.
WEIGHTS_ONLY_NOTE = (
    "torch.load(weights_only=True) refuses this file: it pickles the classes or opcodes listed in "
    "weights_only_refuses, which ckptdiff read as plain data without running them; load it with "
    "those classes in torch.serialization.safe_globals (re-save it with the default "
    "pickle_protocol=2 for opcodes), or with weights_only=False only if you trust where it came "
    "from")


def check_tensor_bounds(session: LoadSession, path: Location,
                        storage_name: Callable[[StorageRecord], str]) -> None:
    """Refuse any tensor whose elements reach past the end of its storage."""
    for tensor in session.tensors:
        needed = None if tensor.pending else tensor.extent_bytes()
        if tensor.storage is not None and needed is not None and needed > tensor.storage.nbytes:
            raise CorruptFileError(
                f"{path}: a {list(tensor.shape)} {tensor.dtype} tensor needs {needed:,} bytes of "
                f"storage {storage_name(tensor.storage)}, which holds {tensor.storage.nbytes:,}")


def build_manifest(path: Location, fmt: str, root: object, key: str | None, session: LoadSession,
                   storage_name: Callable[[StorageRecord], str],
                   metadata: dict[str, Any]) -> Manifest:
    """The manifest of the container ``key`` (or the automatic choice) of the loaded ``root``."""
    selection = select_tensors(root, is_tensor, key, str(path), _scalar_value)
    found = [(f, False) for f in selection.model] + [(f, True) for f in selection.optimizer]
    names = {id(f): storage_name(f.tensor.storage) if f.tensor.storage else None for f, _ in found}
    sharing: dict[str, list[str]] = {}
    for item, _ in found:
        name = names[id(item)]
        if name is not None:
            sharing.setdefault(name, []).append(item.key)
    tensors = tuple(_info(item, slot, names[id(item)], sharing) for item, slot in found)
    layouts = {t.key: f.tensor.layout for (f, _), t in zip(found, tensors, strict=True)
               if f.tensor.layout != "strided"}
    meta = dict(selection.metadata)
    meta["storages"] = len(session.storages)
    if layouts:
        meta["layouts"] = layouts
    if session.weights_only_refuses:
        meta["weights_only_refuses"] = sorted(session.weights_only_refuses)
    meta.update(metadata)
    if session.weights_only_refuses:
        meta["warnings"] = [*meta.get("warnings", []), WEIGHTS_ONLY_NOTE]
    return Manifest(path=str(path), format=fmt, tensors=tensors,
                    container_key=selection.container_key, metadata=meta)


def _info(found: Found[TensorRecord], optimizer_slot: bool, storage: str | None,
          sharing: dict[str, list[str]]) -> TensorInfo:
    tensor = found.tensor
    if optimizer_slot:
        kind = "optimizer_slot"
    elif not tensor.parameter and found.key.rsplit(".", 1)[-1] in BUFFER_NAMES:
        kind = "buffer"
    else:
        kind = "parameter"
    aliases = tuple(k for k in sharing.get(storage or "", ()) if k != found.key)
    return TensorInfo(
        key=found.key, shape=tensor.shape, dtype=TORCH_DTYPES.get(tensor.dtype, "other"),
        device=tensor.device, nbytes=tensor.nbytes, storage=storage, aliases=aliases, kind=kind,
        trainable=tensor.requires_grad if tensor.parameter else None, stride=tensor.stride,
        storage_offset=tensor.storage_offset,
        slot_of=found.slot_of)


def _scalar_value(value: object) -> object:
    return value.scalar_value() if isinstance(value, OpaqueRecord) else None
