"""The ``torch-legacy`` reader: ``torch.save(..., _use_new_zipfile_serialization=False)`` files.

The file is five pickles (protocol 2) in a row, then the storages' bytes:

1. the magic number ``0x1950a86a20f9469cfc6c``, 2. the protocol version (1001), 3. ``sys_info``
(endianness, C type sizes), 4. the object, whose storages are persistent ids
``("storage", type, key, location, numel, view)``, 5. the sorted list of storage keys.

Each storage is then written as an 8-byte element count and ``numel × element size`` bytes, in the
order of the key list. The reader reads the five pickles and each storage's 8-byte count; from
the sizes in the persistent ids it computes where each storage must start and where the file must
end, refuses a shorter file as truncated, and refuses a count that disagrees with its storage, as
``torch.load`` does ("storage has wrong byte size"): a misplaced count means torch would read every
later storage from the wrong place. Storages are named ``storage/<key>`` in the manifest.
"""

from __future__ import annotations

import re
from typing import ClassVar

from ckptdiff.errors import CkptdiffError, CorruptFileError
from ckptdiff.manifest import Manifest
from ckptdiff.readers.base import CountingFile, Location, open_counting
from ckptdiff.readers.pickle.records import StorageRecord, torch_dtype_bytes
from ckptdiff.readers.pickle.scan import PickleReader
from ckptdiff.readers.pickle.unpickler import MAX_PICKLE_BYTES, LoadSession, load_pickle
from ckptdiff.readers.pickle.validate import RecordError, as_storage_key
from ckptdiff.readers.torch.manifest import build_manifest, check_tensor_bounds
from ckptdiff.readers.torch.zip import TORCH_EXTENSIONS

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001
_STORAGE_COUNT_BYTES = 8
# PROTO 2..5, an optional FRAME, then LONG1 with the magic number's 10 bytes.
_MAGIC_PICKLE = re.compile(
    rb"\x80[\x02-\x05](?:\x95.{8})?\x8a\x0a" + re.escape(MAGIC_NUMBER.to_bytes(10, "little")),
    re.DOTALL)


class TorchLegacyReader:
    """Pre-zip ``torch.save`` checkpoints (``_use_new_zipfile_serialization=False``)."""

    name: ClassVar[str] = "torch-legacy"
    extensions: ClassVar[tuple[str, ...]] = TORCH_EXTENSIONS
    description: ClassVar[str] = (
        "PyTorch checkpoint, legacy pickle format (torch < 1.6, _use_new_zipfile_serialization)")
    requires: ClassVar[tuple[str, ...]] = ()
    extra: ClassVar[str | None] = None

    def sniff(self, head: bytes, path: Location) -> bool:
        """A pickle whose first value is torch's legacy magic number."""
        return _MAGIC_PICKLE.match(head) is not None

    def read(self, path: Location, key: str | None = None) -> Manifest:
        """Read the pickles into a manifest; refuse a file shorter than its storages need."""
        raw = open_counting(path)
        with raw:
            pickles = PickleReader(lambda size: _read(raw, size, path), MAX_PICKLE_BYTES)

            others = LoadSession(legacy=True)  # the four small pickles around the object

            def next_pickle(what: str, session: LoadSession | None = None) -> object:
                return load_pickle(pickles, session or others, str(path), what,
                                   weights_only=True)

            magic = next_pickle("the magic number")
            if type(magic) is not int or magic != MAGIC_NUMBER:
                raise CorruptFileError(f"{path}: not a legacy torch checkpoint (bad magic number)")
            version = next_pickle("the protocol version")
            if type(version) is not int or version != PROTOCOL_VERSION:
                shown = version if type(version) is int else type(version).__name__
                raise CorruptFileError(f"{path}: unsupported legacy torch protocol {shown}")
            sys_info = next_pickle("sys_info")
            session = LoadSession(legacy=True)
            obj = next_pickle("the main pickle", session)
            keys = next_pickle("the storage key list")
            starts = _storage_starts(session, keys, pickles.position, path)
            expected = starts[-1][1] if starts else pickles.position
            if raw.size < expected:
                raise CorruptFileError(
                    f"{path}: file ends at byte {raw.size:,} but the storages need "
                    f"{expected:,} bytes: truncated download?")
            _check_counts(raw, session, starts[:-1], (pickles.position, pickles.read_ahead), path)

            def storage_name(storage: StorageRecord) -> str:
                return f"storage/{storage.root}"

            check_tensor_bounds(session, path, storage_name)
            session.weights_only_refuses |= others.weights_only_refuses
            metadata = _sys_info(sys_info)
            untyped = sorted({t.dtype for t in session.tensors if t.storage is not None
                              and t.storage.type_name == "UntypedStorage"})
            if untyped:
                # torch saves these dtypes (uint16, float8 …) as UntypedStorage, then its legacy
                # loader asks that class for a dtype it does not have.
                metadata["warnings"] = [
                    f"torch.load cannot read this legacy-format file: its {', '.join(untyped)} "
                    "tensors use untyped storages; re-save it in the zip format"]
            metadata["bytes_read"] = raw.bytes_read
        return build_manifest(path, self.name, obj, key, session, storage_name, metadata)


def _read(raw: CountingFile, size: int, path: Location) -> bytes:
    try:
        return raw.read(size)
    except OSError as exc:
        raise CkptdiffError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _storage_starts(session: LoadSession, keys: object, data_start: int,
                    path: Location) -> list[tuple[str, int]]:
    """(key, offset of its count) of each listed storage, in list order, then ("", the end of
    the file): each storage is a count and its bytes."""
    if not isinstance(keys, list):
        raise CorruptFileError(f"{path}: the storage key list is not a list")
    # torch finds each listed key among the main pickle's, whose keys are text: a bytes key
    # (b'0' is not '0') is never found, and torch.load fails.
    odd = next((k for k in keys if not isinstance(k, str)), None)
    if odd is not None:
        raise CorruptFileError(f"{path}: the storage key list holds {type(odd).__name__} "
                               "keys, which torch.load never finds among the storages")
    try:
        listed = [as_storage_key(k) for k in keys]
    except RecordError as exc:
        raise CorruptFileError(f"{path}: the storage key list is invalid: {exc}") from None
    end = data_start
    starts: list[tuple[str, int]] = []
    for key in listed:
        storage = session.storages.get(key)
        if storage is None:
            raise CorruptFileError(f"{path}: the storage key list names {key!r}, "
                                   "which no tensor in the file uses")
        starts.append((key, end))
        end += _STORAGE_COUNT_BYTES + storage.nbytes
    unlisted = sorted(set(session.storages) - set(listed))
    if unlisted:
        raise CorruptFileError(f"{path}: storage {unlisted[0]!r} is used but not stored")
    return [*starts, ("", end)]


def _check_counts(raw: CountingFile, session: LoadSession, starts: list[tuple[str, int]],
                  read: tuple[int, bytes], path: Location) -> None:
    """Each storage's stored element count times its element size must be its size.
    ``read``: where the bytes already read past the pickles start, and those bytes (a count
    among them is not read again)."""
    read_start, read_ahead = read
    for key, offset in starts:
        storage = session.storages[key]
        within = offset - read_start
        if within >= 0 and within + _STORAGE_COUNT_BYTES <= len(read_ahead):
            stored = read_ahead[within:within + _STORAGE_COUNT_BYTES]
        else:
            raw.seek(offset)
            stored = _read(raw, _STORAGE_COUNT_BYTES, path)
        count = int.from_bytes(stored, "little", signed=True)
        size = torch_dtype_bytes(storage.dtype) or 1
        if count * size != storage.nbytes:
            raise CorruptFileError(
                f"{path}: storage {key!r} is stored with {count:,} elements of {size} bytes, "
                f"but the checkpoint describes {storage.nbytes:,} bytes; torch.load refuses it "
                "(storage has wrong byte size)")


def _sys_info(sys_info: object) -> dict[str, object]:
    """The JSON-safe facts of ``sys_info``: endianness and C type sizes."""
    facts: dict[str, object] = {}
    if isinstance(sys_info, dict):
        little = sys_info.get("little_endian")
        if isinstance(little, bool):
            facts["byteorder"] = "little" if little else "big"
        sizes = sys_info.get("type_sizes")
        if isinstance(sizes, dict) and all(isinstance(k, str) and type(v) is int
                                           for k, v in sizes.items()):
            facts["type_sizes"] = dict(sizes)
    return facts
