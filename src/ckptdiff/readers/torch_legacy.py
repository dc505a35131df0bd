"""The ``torch-legacy`` reader: ``torch.save(..., _use_new_zipfile_serialization=False)`` files.

The file is five pickles (protocol 2) in a row, then the storages' bytes:

1. the magic number ``0x1950a86a20f9469cfc6c``, 2. the protocol version (1001), 3. ``sys_info``
(endianness, C type sizes), 4. the object, whose storages are persistent ids
``("storage", type, key, location, numel, view)``, 5. the sorted list of storage keys.

Each storage is then written as an 8-byte element count and ``numel × element size`` bytes, in the
order of the key list. The reader reads the five pickles only; from the sizes in the persistent
ids it computes where the file must end, and refuses a shorter file as truncated. Storages are
named ``storage/<key>`` in the manifest.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from ckptdiff.errors import CkptdiffError, CorruptFileError
from ckptdiff.manifest import Manifest
from ckptdiff.readers.base import CountingFile
from ckptdiff.readers.torch_manifest import build_manifest, check_tensor_bounds
from ckptdiff.readers.torch_records import StorageRecord
from ckptdiff.readers.torch_unpickler import LoadSession, load_pickle
from ckptdiff.readers.torch_validate import RecordError, as_storage_key
from ckptdiff.readers.torch_zip import TORCH_EXTENSIONS

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001
_STORAGE_COUNT_BYTES = 8
# PROTO 2..5, an optional FRAME, then LONG1 with the magic number's 10 bytes.
_MAGIC_PICKLE = re.compile(
    rb"\x80[\x02-\x05](?:\x95.{8})?\x8a\x0a" + re.escape(MAGIC_NUMBER.to_bytes(10, "little")),
    re.DOTALL)


class ReadAhead:
    """A file read in small chunks, handing out bytes from a logical position (``tell``).

    Pickles are read opcode by opcode; reading ahead keeps that fast. The chunk starts small and
    doubles as a pickle goes on (up to 64 KiB), so reading stops at most about one chunk past the
    last pickle, into the storage bytes, and a small file's storages are barely touched.
    """

    def __init__(self, raw: CountingFile, first_chunk: int = 512,
                 max_chunk: int = 65536) -> None:
        self._raw = raw
        self._first_chunk = first_chunk
        self._max_chunk = max_chunk
        self._chunk = first_chunk
        self._buffer = b""
        self._start = 0  # file position of _buffer[0]
        self._offset = 0  # logical position inside _buffer

    def tell(self) -> int:
        """The logical position in the file."""
        return self._start + self._offset

    def restart_chunks(self) -> None:
        """Start reading ahead small again (call before each pickle)."""
        self._chunk = self._first_chunk

    def read(self, count: int) -> bytes:
        """Up to ``count`` bytes (fewer at the end of the file)."""
        self._fill(lambda: len(self._buffer) - self._offset >= count, count)
        data = self._buffer[self._offset:self._offset + count]
        self._offset += len(data)
        return data

    def readline(self, limit: int = -1) -> bytes:
        """Up to and including the next newline, at most ``limit`` bytes."""
        def found() -> bool:
            window = self._buffer[self._offset:]
            return b"\n" in window or 0 <= limit <= len(window)

        self._fill(found, 0)
        window = self._buffer[self._offset:]
        end = window.find(b"\n") + 1 or len(window)
        line = window[:end if limit < 0 else min(end, limit)]
        self._offset += len(line)
        return line

    def _fill(self, done: Callable[[], bool], want: int) -> None:
        while not done():
            if self._offset > self._max_chunk:  # drop what was consumed
                self._start += self._offset
                self._buffer, self._offset = self._buffer[self._offset:], 0
            more = self._raw.read(max(self._chunk, want))
            if not more:
                return
            self._buffer += more
            self._chunk = min(self._chunk * 2, self._max_chunk)


class TorchLegacyReader:
    """Pre-zip ``torch.save`` checkpoints (``_use_new_zipfile_serialization=False``)."""

    name: ClassVar[str] = "torch-legacy"
    extensions: ClassVar[tuple[str, ...]] = TORCH_EXTENSIONS
    description: ClassVar[str] = "PyTorch checkpoint, legacy pickle format (torch < 1.6)"
    requires: ClassVar[tuple[str, ...]] = ()
    extra: ClassVar[str | None] = None

    def sniff(self, head: bytes, path: Path) -> bool:
        """A pickle whose first value is torch's legacy magic number."""
        return _MAGIC_PICKLE.match(head) is not None

    def read(self, path: Path, key: str | None = None) -> Manifest:
        """Read the pickles into a manifest; refuse a file shorter than its storages need."""
        try:
            raw = CountingFile(path)
        except OSError as exc:
            raise CkptdiffError(f"{path}: cannot read: {exc.strerror or exc}") from None
        with raw:
            stream = ReadAhead(raw)

            def next_pickle(what: str, session: LoadSession | None = None) -> object:
                stream.restart_chunks()
                return load_pickle(stream, session or LoadSession(legacy=True), str(path), what)

            magic = next_pickle("the magic number")
            if type(magic) is not int or magic != MAGIC_NUMBER:
                raise CorruptFileError(f"{path}: not a legacy torch checkpoint (bad magic number)")
            version = next_pickle("the protocol version")
            if type(version) is not int or version != PROTOCOL_VERSION:
                raise CorruptFileError(f"{path}: unsupported legacy torch protocol {version!r}")
            sys_info = next_pickle("sys_info")
            session = LoadSession(legacy=True)
            obj = next_pickle("the main pickle", session)
            keys = next_pickle("the storage key list")
            expected = _expected_size(session, keys, stream.tell(), path)
            if raw.size < expected:
                raise CorruptFileError(
                    f"{path}: file ends at byte {raw.size:,} but the storages need "
                    f"{expected:,} bytes: truncated download?")

            def storage_name(storage: StorageRecord) -> str:
                return f"storage/{storage.root}"

            check_tensor_bounds(session, path, storage_name)
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


def _expected_size(session: LoadSession, keys: object, data_start: int, path: Path) -> int:
    """Where the file ends: each listed storage is a count and its bytes, in list order."""
    if not isinstance(keys, list):
        raise CorruptFileError(f"{path}: the storage key list is not a list")
    try:
        listed = [as_storage_key(k) for k in keys]
    except RecordError as exc:
        raise CorruptFileError(f"{path}: the storage key list is invalid: {exc}") from None
    end = data_start
    for key in listed:
        storage = session.storages.get(key)
        if storage is None:
            raise CorruptFileError(f"{path}: the storage key list names {key!r}, "
                                   "which no tensor in the file uses")
        end += _STORAGE_COUNT_BYTES + storage.nbytes
    unlisted = sorted(set(session.storages) - set(listed))
    if unlisted:
        raise CorruptFileError(f"{path}: storage {unlisted[0]!r} is used but not stored")
    return end


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
