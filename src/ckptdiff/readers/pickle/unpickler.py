"""The restricted unpickler for torch checkpoints: globals resolve only to ckptdiff's recorders.

``load_pickle`` first scans the opcodes (:mod:`ckptdiff.readers.pickle.scan`): a pickle naming any
global outside :data:`ALLOWED_GLOBALS` is refused with :class:`UnsafeContentError` naming every such
global, and nothing is unpickled. Otherwise :class:`RestrictedUnpickler` (a ``pickle.Unpickler``
whose ``find_class`` looks names up in the allow-list and never imports) builds inert records. As
defence in depth, a global that reaches ``find_class`` without being allowed is recorded and
replaced by an inert placeholder, loading continues to collect the rest, and the load ends in
``UnsafeContentError``.
"""

from __future__ import annotations

import io

# The C unpickler itself: the ``pickle`` module adds only its pure-Python twin, a few
# milliseconds of import for every inspect.
from _pickle import Unpickler
from collections.abc import Mapping
from typing import IO, Any

from ckptdiff.errors import CkptdiffError, CorruptFileError, UnsafeContentError
from ckptdiff.readers.pickle.allowlist import (
    ALLOWED_GLOBALS,
    UNSUPPORTED_GLOBALS,
    WEIGHTS_ONLY_REFUSES,
)
from ckptdiff.readers.pickle.rebuild import Recorder
from ckptdiff.readers.pickle.records import Record, StorageRecord, StorageTypeToken, TensorRecord
from ckptdiff.readers.pickle.scan import (
    PickleReader,
    PickleScanError,
    PickleTooComplexError,
    PickleTooLargeError,
    PickleTruncatedError,
    qualified_global,
    scan_pickle,
)
from ckptdiff.readers.pickle.validate import (
    RecordError,
    UnsupportedRecordError,
    as_storage_key,
    as_storage_location,
    as_text,
    as_uint,
)
from ckptdiff.readers.pickle.weights_only import weights_only_refusals
from ckptdiff.readers.safety import MAX_PICKLE_BYTES as MAX_PICKLE_BYTES  # re-exported


class UnknownGlobal:
    """Base of the inert placeholders for globals outside the allow-list.

    Every way a pickle can use a global (call it, NEWOBJ it, BUILD it, append or set items on its
    result) is accepted and does nothing, so loading can go on and find every unsafe name.
    """

    __slots__ = ()
    qualified_name = "?"

    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    def __call__(self, *args: object, **kwargs: object) -> UnknownGlobal:
        return self

    def __setstate__(*args: object) -> None:  # noqa: N805 - also absorbs BUILD on the class
        pass

    def __setitem__(self, key: object, value: object) -> None:
        pass

    def append(self, item: object) -> None:
        """Absorb APPEND."""

    def extend(self, items: object) -> None:
        """Absorb APPENDS."""


class LoadSession:
    """What one checkpoint's pickles referenced: storages by key, every tensor, unsafe globals."""

    def __init__(self, legacy: bool) -> None:
        self.legacy = legacy
        self.storages: dict[str, StorageRecord] = {}
        self.views: dict[str, StorageRecord] = {}
        self.tensors: list[TensorRecord] = []
        self.unsafe: set[str] = set()
        self.weights_only_refuses: set[str] = set()

    def placeholder(self, qualified_name: str) -> type[UnknownGlobal]:
        """Record an unsafe global and return an inert class standing in for it."""
        self.unsafe.add(qualified_name)
        return type("UnknownGlobal", (UnknownGlobal,), {"__slots__": (),
                                                        "qualified_name": qualified_name})

    def storage(self, pid: object) -> StorageRecord:
        """The storage a torch persistent id names (zip: 5 fields; legacy: 6 with a view)."""
        fields = 6 if self.legacy else 5
        if not isinstance(pid, tuple) or len(pid) != fields:
            raise RecordError(f"persistent id is not a {fields}-field storage tuple")
        if as_text(pid[0], "persistent id tag") != "storage":
            raise RecordError("persistent id does not name a storage")
        storage_type = pid[1]
        if not isinstance(storage_type, StorageTypeToken) or storage_type.dtype is None:
            raise RecordError("persistent id names no storage type")
        if not isinstance(pid[2], str):  # torch would look for a storage named by its repr
            raise RecordError("persistent id's storage key is not text")
        key = as_storage_key(pid[2])
        record = self.storages.get(key)
        if record is not None and record.nbytes == 0 and record.dtype != storage_type.dtype:
            if not self.legacy:  # zip: torch.load without mmap makes one per id, with mmap shares
                raise RecordError(f"the empty storage {key} is viewed as {record.dtype} and "
                                  f"{storage_type.dtype}, which torch.load reads differently "
                                  "with and without mmap")
            record = StorageRecord(key, storage_type.name, storage_type.dtype, 0, record.device)
        if record is None:
            record = StorageRecord(key, storage_type.name, storage_type.dtype,
                                   as_uint(pid[4], "storage size"), as_storage_location(pid[3]))
            self.storages[key] = record
        if self.legacy and pid[5] is not None:
            return self._view(record, pid[5])
        return record

    def _view(self, root: StorageRecord, view: object) -> StorageRecord:
        # Pre-1.0 legacy files could save a storage view: (view_key, offset, size) in elements.
        if not isinstance(view, tuple) or len(view) != 3:
            raise RecordError("storage view metadata is not (key, offset, size)")
        key = as_storage_key(view[0])
        offset, size = as_uint(view[1], "view offset"), as_uint(view[2], "view size")
        if offset + size > root.numel:
            raise RecordError(f"storage view {key} reaches past its storage {root.key}")
        view_record = StorageRecord(key, root.type_name, root.dtype, size, root.device,
                                    root=root.key, base_offset=offset)
        return self.views.setdefault(key, view_record)


class _BoundRecorder(Record):
    """An allowed callable, bound to a session: notes the tensors it builds, and once the file is
    known to be unsafe, answers nonsense arguments with a placeholder instead of an error."""

    __slots__ = ("_function", "_session")

    def __init__(self, function: Any, session: LoadSession) -> None:
        self._function = function
        self._session = session

    def __call__(self, *args: object) -> object:
        try:
            result = self._function(*args)
        except RecordError:
            if self._session.unsafe:
                return UnknownGlobal()
            raise
        if isinstance(result, TensorRecord):
            self._session.tensors.append(result)
        return result


class RestrictedUnpickler(Unpickler):
    """``find_class`` resolves only allow-listed names to records; ``persistent_load`` only
    storage ids. Nothing is imported, and no real object of the file's choosing is built."""

    def __init__(self, file: IO[bytes], session: LoadSession,
                 extra_globals: Mapping[tuple[str, str], object] | None = None) -> None:
        super().__init__(file, encoding="utf-8")
        self._session = session
        self._extra = extra_globals or {}

    def find_class(self, module: str, name: str, /) -> Any:
        module, name = qualified_global(module, name)
        found = ALLOWED_GLOBALS.get((module, name), self._extra.get((module, name)))
        if found is None:
            return self._session.placeholder(f"{module}.{name}")
        if f"{module}.{name}" in WEIGHTS_ONLY_REFUSES:
            self._session.weights_only_refuses.add(f"{module}.{name}")
        # Recorders are bound to the session; tokens (tensor classes, dtypes …) keep their
        # identity, which the rebuild recorders check.
        return _BoundRecorder(found, self._session) if isinstance(found, Recorder) else found

    def persistent_load(self, pid: Any) -> Any:
        try:
            return self._session.storage(pid)
        except RecordError:
            if self._session.unsafe:
                return UnknownGlobal()
            raise


def load_pickle(source: bytes | PickleReader, session: LoadSession, path: str, what: str,
                limit: int = MAX_PICKLE_BYTES,
                extra_globals: Mapping[tuple[str, str], object] | None = None,
                weights_only: bool = False) -> object:
    """Scan, then unpickle into records, one pickle (named ``what`` in messages): the pickle at the
    start of ``source`` bytes, or the next one of a :class:`PickleReader`. ``extra_globals``
    allows more names for this load only (the DCP reader's metadata classes). ``weights_only``:
    the pickle is read by ``torch.load(weights_only=True)``: what its unpickler refuses is
    noted in ``session.weights_only_refuses`` (:mod:`ckptdiff.readers.pickle.weights_only`)."""
    try:
        scan = scan_pickle(source, limit) if isinstance(source, bytes) else source.next()
    except PickleTruncatedError:
        raise CorruptFileError(
            f"{path}: the file ends inside {what}: truncated download?") from None
    except PickleTooLargeError:
        raise CorruptFileError(f"{path}: {what} is larger than {limit:,} bytes") from None
    except PickleTooComplexError as exc:
        raise CorruptFileError(f"{path}: refused {what}: {exc}") from None
    except PickleScanError as exc:
        raise CorruptFileError(f"{path}: {what} is not a valid pickle: {_one_line(exc)}") from None
    known = ALLOWED_GLOBALS.keys() | UNSUPPORTED_GLOBALS.keys() | (extra_globals or {}).keys()
    unsafe = {f"{module}.{name}" for module, name in scan.globals - known}
    if unsafe:
        raise UnsafeContentError(path, unsafe)
    unsupported = sorted(UNSUPPORTED_GLOBALS[g] for g in scan.globals if g in UNSUPPORTED_GLOBALS)
    if unsupported:
        raise CkptdiffError(f"{path}: {unsupported[0]}")
    if weights_only:  # read, but said: the manifest lists what torch's unpickler refuses
        session.weights_only_refuses.update(weights_only_refusals(scan.opcodes, scan.globals))
    try:
        result = RestrictedUnpickler(io.BytesIO(scan.data), session, extra_globals).load()
    except UnsupportedRecordError as exc:
        error: CkptdiffError = CkptdiffError(f"{path}: {exc}")
    except RecordError as exc:
        error = CorruptFileError(f"{path}: {what} is not a torch checkpoint pickle: {exc}")
    except CkptdiffError:
        raise
    except RecursionError:
        error = CorruptFileError(f"{path}: {what} nests too deeply")
    except Exception as exc:  # any input (EOFError, MemoryError …) must end in a clear error
        error = CorruptFileError(f"{path}: {what} is not a valid pickle: {_one_line(exc)}")
    else:
        if session.unsafe:
            raise UnsafeContentError(path, session.unsafe)
        return result
    if session.unsafe:
        raise UnsafeContentError(path, session.unsafe) from None
    raise error from None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0][:200] if text else type(exc).__name__) or type(exc).__name__
