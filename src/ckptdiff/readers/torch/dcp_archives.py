"""The byte ranges DCP's load reads: each must be the ``torch.save`` archive of what it loads.

``FileSystemReader.read_data`` hands each storage entry's range (``offset``, ``length`` of its
file) to ``torch.load(weights_only=True)``: for a tensor chunk the result is narrowed to the
chunk's sizes and copied into the tensor, so it must be a tensor with as many dims as the chunk
and at least its size in each, of a dtype the copy can convert. Each range is read here as the
``torch-zip`` reader reads a file (central directory, ``data.pkl``; no tensor data). A non-tensor
value is unpickled by torch with ``weights_only=False``, which ckptdiff never does: its range
is checked to be a zip archive from its first byte to its last, and no more.
"""

from __future__ import annotations

import io
from typing import Any

from ckptdiff.errors import CkptdiffError, CorruptFileError
from ckptdiff.readers.base import CountingFile, Location

_LOCAL_HEADER = b"PK\x03\x04"
_END_RECORD = b"PK\x05\x06"
_END_RECORD_SIZE = 22

# Dtypes a chunk cannot be copied into (``target.copy_(chunk)``, torch 2.13 CPU): the sub-byte
# ints and the quantized ones from any dtype, the bit and packed float4 ones from another one.
_NEVER_COPIED = frozenset({*(f"{u}int{n}" for u in ("", "u") for n in range(1, 8)), "qint8",
                           "qint32", "quint8", "quint4x2", "quint2x4"})
_COPIED_FROM_ITSELF = frozenset({"bits8", "bits16", "bits1x8", "bits2x4", "bits4x2",
                                 "float4_e2m1fn_x2"})


class _View(io.RawIOBase):
    """Bytes ``start`` to ``start + size`` of an open file, as a file of their own."""

    def __init__(self, file: CountingFile, start: int, size: int) -> None:
        super().__init__()
        self._base, self._start, self._size, self._at = file, start, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._at, io.SEEK_END: self._size}[whence]
        self._at = max(0, base + offset)
        return self._at

    def tell(self) -> int:
        return self._at

    def readinto(self, buffer: Any) -> int:
        count = max(0, min(len(buffer), self._size - self._at))
        self._base.seek(self._start + self._at)
        data = self._base.read(count)
        buffer[:len(data)] = data
        self._at += len(data)
        return len(data)

    def read(self, size: int | None = -1) -> bytes:
        wanted = self._size - self._at if size is None or size < 0 else size
        buffer = bytearray(max(0, min(wanted, self._size - self._at)))
        return bytes(buffer[:self.readinto(buffer)])

    def close(self) -> None:  # the file it views stays open
        super().close()


class RangeFile(CountingFile):
    """A :class:`CountingFile` over one byte range of an open one (its reads count there)."""

    def __init__(self, file: CountingFile, start: int, size: int) -> None:  # noqa: D107
        io.RawIOBase.__init__(self)
        self.name, self.size = file.name, size
        self._file = _View(file, start, size)  # type: ignore[assignment]
        self._remote, self._consumed = None, 0


def _check_framing(handle: CountingFile, start: int, end: int, what: str) -> None:
    head = tail = b""
    if end - start >= len(_LOCAL_HEADER) + _END_RECORD_SIZE:
        handle.seek(start)
        head = handle.read(len(_LOCAL_HEADER))
        handle.seek(end - _END_RECORD_SIZE)
        tail = handle.read(_END_RECORD_SIZE)
    if head != _LOCAL_HEADER or not tail.startswith(_END_RECORD) or tail[20:22] != b"\0\0":
        raise CorruptFileError(f"{what} are not one torch.save archive: wrong offset or length "
                               "in .metadata")


def _check_chunk(handle: CountingFile, start: int, end: int, chunk: tuple[tuple[int, ...], str],
                 file: Location, what: str) -> None:
    from ckptdiff.readers.pickle.records import is_tensor
    from ckptdiff.readers.torch.zip import load_archive

    sizes, dtype = chunk
    try:
        saved, session, _, _ = load_archive(RangeFile(handle, start, end - start), file)
    except CkptdiffError as exc:
        reason = str(exc).removeprefix(f"{file}: ")
        raise CorruptFileError(f"{what} are not a torch.save archive torch.load reads: "
                               f"{reason[:160]}") from None
    if session.weights_only_refuses:
        raise CorruptFileError(f"{what} hold a pickle torch.load(weights_only=True) refuses")
    if not is_tensor(saved):
        raise CorruptFileError(f"{what} do not hold a tensor")
    if len(saved.shape) != len(sizes) or any(s < n for s, n in zip(saved.shape, sizes,
                                                                     strict=True)):
        raise CorruptFileError(f"{what} hold a tensor of size {list(saved.shape)}, not the "
                               f"chunk's {list(sizes)}")
    if dtype in _NEVER_COPIED or dtype in _COPIED_FROM_ITSELF and saved.dtype != dtype:
        raise CorruptFileError(f"{what} hold {saved.dtype}, which DCP's load cannot copy into "
                               f"a {dtype} tensor")


def check_archives(ranges: dict[str, list[tuple[int, int, str, Any]]], folder: Location,
                   display: str) -> int:
    """Check every range ``(start, end, key, chunk)`` of every storage file, where ``chunk``
    is the (sizes, dtype) a tensor chunk is read into, None for a non-tensor value; the bytes
    read."""
    total = 0
    for name, found in sorted(ranges.items()):
        with CountingFile(folder / name) as handle:
            for start, end, key, chunk in found:
                what = (f"{display}: the bytes {start:,}-{end:,} of {name} that DCP's load reads "
                        f"for {key[:80]!r}")
                _check_framing(handle, start, end, what)
                if chunk is not None:
                    _check_chunk(handle, start, end, chunk, folder / name, what)
            total += handle.bytes_read
    return total
