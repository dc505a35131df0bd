"""The ``torchscript`` reader: parameters and buffers of a ``torch.jit.save`` archive.

The archive is a torch zip (see :mod:`.zip_layout`): ``<root>/data.pkl`` pickles the module tree
(each module an instance of a ``__torch__.*`` class, its attributes set by BUILD), storages are
``<root>/data/<key>``, ``<root>/code/`` holds the compiled classes, ``constants.pkl`` the tensor
constants of the code. Both pickles go through the same scan and allow-list unpickler as
``torch.save`` files, the scripted classes becoming opaque records
(:mod:`ckptdiff.readers.pickle.script_records`); nothing is imported, and the code is only
scanned for each class's ``__parameters__``/``__buffers__`` (:mod:`.torchscript_code`).

Keys follow ``torch.jit.load(path).state_dict()``: per module, its parameters, then its buffers
(each in attribute order, ``None`` skipped), then its submodules. A scripted module keeps every
buffer, non-persistent ones included. Tensor attributes that are neither (``self.t = tensor``)
are not in ``state_dict()``; they are listed in ``metadata["tensor_attributes"]``.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable, Iterator
from typing import IO, ClassVar, cast

from ckptdiff.dtypes import TORCH_DTYPES
from ckptdiff.errors import CkptdiffError, CorruptFileError
from ckptdiff.manifest import Manifest, TensorInfo
from ckptdiff.readers.base import CountingFile, Location, open_counting
from ckptdiff.readers.pickle.records import StorageRecord, TensorRecord, is_tensor
from ckptdiff.readers.pickle.scan import PickleReader, PickleScan
from ckptdiff.readers.pickle.script_records import ScriptObjectRecord, script_globals
from ckptdiff.readers.pickle.unpickler import MAX_PICKLE_BYTES, LoadSession, load_pickle
from ckptdiff.readers.torch.manifest import check_tensor_bounds
from ckptdiff.readers.torch.torchscript_code import MAX_CODE_BYTES, ScriptClassTable
from ckptdiff.readers.torch.zip_layout import TORCHSCRIPT, archive_kind
from ckptdiff.readers.torch.zip_records import check_version_record
from ckptdiff.readers.zip_safety import open_torch_archive, read_member

_DATA_PKL = re.compile(r"([^/]+)/data\.pkl")
_CUSTOM_CLASSES = "__torch__.torch.classes."  # C++ (torchbind) classes: no code, no state_dict


class TorchScriptReader:
    """TorchScript archives (``torch.jit.save``), read without torch."""

    name: ClassVar[str] = "torchscript"
    extensions: ClassVar[tuple[str, ...]] = (".pt", ".pth", ".ptl", ".torchscript")
    description: ClassVar[str] = "TorchScript archive (torch.jit.save): parameters and buffers"
    requires: ClassVar[tuple[str, ...]] = ()
    extra: ClassVar[str | None] = None

    def sniff(self, head: bytes, path: Location) -> bool:
        """A torch zip with ``code/`` or ``constants.pkl`` beside ``data.pkl``."""
        return archive_kind(head, path) == TORCHSCRIPT

    def read(self, path: Location, key: str | None = None) -> Manifest:
        """The module tree's parameters and buffers; ``key`` is refused (no containers)."""
        if key is not None:
            raise CkptdiffError(f"{path}: a TorchScript archive has no containers; "
                                f"drop --key {key!r}")
        raw = open_counting(path)
        with raw:
            archive = open_torch_archive(cast(IO[bytes], raw), raw.size, str(path))
            members = {info.filename: info for info in archive.infolist()}
            root = _root(archive, str(path))
            check_version_record(lambda info, limit: _member(raw, info, str(path), limit),
                                 members, root, path)
            session = LoadSession(legacy=False)
            module = _load(raw, members[f"{root}/data.pkl"], session, str(path))
            if not isinstance(module, ScriptObjectRecord):
                raise CorruptFileError(f"{path}: {root}/data.pkl does not hold a scripted module")
            constants = _constants(raw, members.get(f"{root}/constants.pkl"), str(path))

            def storage_name(storage: StorageRecord) -> str:
                return f"{root}/data/{storage.root}"

            for storage in session.storages.values():
                _check_storage(members.get(storage_name(storage)), storage, storage_name(storage),
                               str(path))
            check_tensor_bounds(session, path, storage_name)
            classes = ScriptClassTable(
                root, set(members), lambda name: _member(raw, members[name], str(path),
                                                         MAX_CODE_BYTES), str(path))
            found = list(_walk(module, "", classes, str(path), depth=0))
            metadata: dict[str, object] = {
                "root_module": module.qualified_name, "modules": classes.modules_seen,
                "tensor_constants": constants, "storages": len(session.storages)}
            version = members.get(f"{root}/version")
            if version is not None:
                metadata["archive_version"] = _text(raw, version, str(path))
            attributes = [k for k, _, kind in found if kind == "attribute"]
            if attributes:
                metadata["tensor_attributes"] = attributes
            metadata["bytes_read"] = raw.bytes_read
        tensors = _infos([(k, t, kind) for k, t, kind in found if kind != "attribute"],
                         storage_name)
        return Manifest(path=str(path), format=self.name, tensors=tensors, container_key=None,
                        metadata=metadata)


def _walk(obj: ScriptObjectRecord, prefix: str, classes: ScriptClassTable, path: str,
          depth: int) -> Iterator[tuple[str, TensorRecord, str]]:
    if depth > 1000:
        raise CorruptFileError(f"{path}: the module tree nests more than 1,000 levels deep")
    declared = classes.get(obj.qualified_name)
    if not declared.is_module:
        return
    classes.modules_seen += 1
    if not hasattr(obj, "attributes"):
        what = "saves custom state (__getstate__)" if obj.state_set else "has no state"
        raise CkptdiffError(f"{path}: module {prefix.rstrip('.') or '(root)'} "
                            f"({obj.qualified_name}) {what}; ckptdiff cannot list its tensors")
    # Attribute order is the class's slot order, which state_dict() follows.
    attributes = obj.attribute_dict()
    parameters, buffers = set(declared.parameters), set(declared.buffers)
    tensors = [(name, value) for name, value in attributes.items() if is_tensor(value)]
    for name, value in tensors:
        if name in parameters:
            yield f"{prefix}{name}", value, "parameter"
    for name, value in tensors:
        if name in buffers:
            yield f"{prefix}{name}", value, "buffer"
    for name, value in tensors:
        if name not in parameters and name not in buffers:
            yield f"{prefix}{name}", value, "attribute"
    for name, child in attributes.items():
        if (isinstance(child, ScriptObjectRecord)
                and not child.qualified_name.startswith(_CUSTOM_CLASSES)):
            yield from _walk(child, f"{prefix}{name}.", classes, path, depth + 1)


def _infos(found: list[tuple[str, TensorRecord, str]],
           storage_name: Callable[[StorageRecord], str]) -> tuple[TensorInfo, ...]:
    """Manifest entries; ``aliases`` are the keys sharing a storage (tied weights)."""
    sharing: dict[str, list[str]] = {}
    for key, tensor, _ in found:
        if tensor.storage is not None:
            sharing.setdefault(storage_name(tensor.storage), []).append(key)
    out = []
    for key, tensor, kind in found:
        storage = storage_name(tensor.storage) if tensor.storage is not None else None
        out.append(TensorInfo(
            key=key, shape=tensor.shape, dtype=TORCH_DTYPES.get(tensor.dtype, "other"),
            device=tensor.device, nbytes=tensor.nbytes, storage=storage,
            aliases=tuple(k for k in sharing.get(storage or "", ()) if k != key), kind=kind,
            trainable=tensor.requires_grad if kind == "parameter" else False,
            stride=tensor.stride, storage_offset=tensor.storage_offset))
    return tuple(out)


def _root(archive: zipfile.ZipFile, path: str) -> str:
    names = archive.namelist()
    roots = [m.group(1) for m in map(_DATA_PKL.fullmatch, names) if m]
    if len(roots) != 1:
        raise CorruptFileError(f"{path}: a TorchScript archive holds one data.pkl, this one "
                               f"{len(roots)}")
    return roots[0]


class _ScriptPickle(PickleReader):
    """One pickle whose scan also fills the extra allow-list with its ``__torch__.*`` classes.

    ``load_pickle`` scans first and reads ``extra_globals`` only after, so the one scan it makes
    serves both (scanning twice cost a third of the read of a 256-tensor archive).
    """

    def __init__(self, data: bytes, extra: dict[tuple[str, str], object]) -> None:
        super().__init__(io.BytesIO(data).read, MAX_PICKLE_BYTES, first_chunk=len(data) + 1)
        self._extra = extra

    def next(self) -> PickleScan:
        scan = super().next()
        self._extra.update(script_globals(scan.globals))
        return scan


def _load(raw: CountingFile, info: zipfile.ZipInfo, session: LoadSession, path: str) -> object:
    data = _member(raw, info, path, MAX_PICKLE_BYTES)
    extra = dict(script_globals(()))  # the torch.jit._pickle helpers; the scan adds classes
    return load_pickle(_ScriptPickle(data, extra), session, path, info.filename,
                       extra_globals=extra)


def _constants(raw: CountingFile, info: zipfile.ZipInfo | None, path: str) -> int:
    """How many tensors ``constants.pkl`` holds (scanned and unpickled like data.pkl)."""
    if info is None:
        return 0
    session = LoadSession(legacy=False)
    _load(raw, info, session, path)
    return len(session.tensors)


def _member(raw: CountingFile, info: zipfile.ZipInfo, path: str, limit: int) -> bytes:
    try:
        return read_member(cast(IO[bytes], raw), info, path, limit)
    except OSError as exc:
        raise CkptdiffError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _text(raw: CountingFile, info: zipfile.ZipInfo, path: str) -> str:
    return _member(raw, info, path, 64).decode("ascii", "replace").strip()


def _check_storage(info: zipfile.ZipInfo | None, storage: StorageRecord, name: str,
                   path: str) -> None:
    # Sized by the central directory (whose extents check_zip_directory checked), never read.
    if info is None:
        raise CorruptFileError(
            f"{path}: storage {name} is missing from the archive: truncated or damaged file?")
    if info.file_size < storage.nbytes:
        raise CorruptFileError(
            f"{path}: storage {name} holds {info.file_size:,} bytes but the module needs "
            f"{storage.nbytes:,}: truncated or damaged file?")
