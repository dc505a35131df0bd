"""The byte ranges DCP's load reads: each must be one ``torch.save`` archive.

``FileSystemReader.read_data`` hands each storage entry's range (``offset``, ``length`` of its
file) to ``torch.load``: a range that does not start with a zip local header is read as a
legacy pickle (and refused by ``weights_only``), and one whose last 22 bytes are not the end of
central directory record fails as "failed finding central directory". ``torch.save`` writes no
archive comment, and DCP records each archive's exact length, so the record ends the range.
Two small reads per range; the tensor data is not read.
"""

from __future__ import annotations

from ckptdiff.errors import CorruptFileError
from ckptdiff.readers.base import CountingFile, Location

_LOCAL_HEADER = b"PK\x03\x04"
_END_RECORD = b"PK\x05\x06"
_END_RECORD_SIZE = 22


def _check_range(handle: CountingFile, start: int, end: int, key: str, name: str,
                 display: str) -> None:
    head = tail = b""
    if end - start >= len(_LOCAL_HEADER) + _END_RECORD_SIZE:
        handle.seek(start)
        head = handle.read(len(_LOCAL_HEADER))
        handle.seek(end - _END_RECORD_SIZE)
        tail = handle.read(_END_RECORD_SIZE)
    if head != _LOCAL_HEADER or not tail.startswith(_END_RECORD) or tail[20:22] != b"\0\0":
        raise CorruptFileError(
            f"{display}: the bytes {start:,}-{end:,} of {name} that DCP's load reads for "
            f"{key[:80]!r} are not one torch.save archive: wrong offset or length in .metadata")


def check_archives(ranges: dict[str, list[tuple[int, int, str]]], folder: Location,
                   display: str) -> int:
    """Check every range ``(start, end, key)`` of every storage file; the bytes read."""
    total = 0
    for name, found in sorted(ranges.items()):
        with CountingFile(folder / name) as handle:
            for start, end, key in found:
                _check_range(handle, start, end, key, name, display)
            total += handle.bytes_read
    return total
