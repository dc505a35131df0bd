"""Reads and validates one safetensors header, by the rules of the safetensors library itself.

A safetensors file is an 8-byte little-endian header length ``N``, ``N`` bytes of UTF-8 JSON, then
the data section. Only the first ``8 + N`` bytes are read. The checks mirror
``SafeTensors::read_metadata`` and ``Metadata::validate`` in the library's ``tensor.rs``, so a file
accepted here is one the library loads, with one stricter rule: duplicate JSON keys (which the
library silently resolves to the last one) are refused, since they make the file ambiguous.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO, Any, cast

from ckptdiff.dtypes import DTYPE_BITS, SAFETENSORS_DTYPES, SAFETENSORS_OTHER_BITS
from ckptdiff.errors import CkptdiffError, CorruptFileError
from ckptdiff.readers.base import CountingFile, Location, read_exact
from ckptdiff.readers.safetensors.strict_json import (
    MAX_NESTING,
    describe,
    json_type,
    load_strict_json,
    nesting_depth,
    quote,
)
from ckptdiff.readers.safety import LFS_POINTER, is_lfs_pointer, lfs_pointer_error

MAX_HEADER_SIZE = 100_000_000  # the library's MAX_HEADER_SIZE
_USIZE_LIMIT = 2**64  # the library counts in u64 (usize on 64-bit hosts)


def element_bits(code: str) -> int | None:
    """Bits per element of a safetensors dtype code, or ``None`` for an unknown code."""
    if code in SAFETENSORS_DTYPES:
        return DTYPE_BITS[SAFETENSORS_DTYPES[code]]
    return SAFETENSORS_OTHER_BITS.get(code)


@dataclass(frozen=True)
class HeaderEntry:
    """One tensor entry of a header; ``begin``/``end`` are offsets into the data section."""

    key: str
    dtype_code: str
    shape: tuple[int, ...]
    begin: int
    end: int


@dataclass(frozen=True)
class SafetensorsHeader:
    """A validated header: entries in data-offset order, ``__metadata__``, bytes read."""

    entries: tuple[HeaderEntry, ...]
    metadata: dict[str, str]
    bytes_read: int


def read_header(path: Location) -> SafetensorsHeader:
    """Read and validate the header of the safetensors file at ``path`` (never its data)."""
    label = str(path)
    try:
        with CountingFile(path) as file:
            size = file.size
            raw = _read_header_bytes(cast(IO[bytes], file), size, label)
            bytes_read = file.bytes_read
    except OSError as exc:
        raise CkptdiffError(f"{label}: cannot read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorruptFileError(
            f"{label}: header is not valid UTF-8 (byte {8 + exc.start:,}): not a safetensors file?"
        ) from None
    document = load_strict_json(text, f"{label}: header")
    if not isinstance(document, dict):
        raise CorruptFileError(f"{label}: header is a JSON {json_type(document)}, not an object")
    metadata, entries = _parse_entries(document, label)
    ordered, data_end = _check_layout(entries, label)
    file_end = 8 + len(raw) + data_end
    if file_end > size:
        raise CorruptFileError(
            f"{label}: file ends at byte {size:,} but the header says {file_end:,}: "
            "truncated download?"
        )
    if file_end < size:
        extra = size - file_end
        raise CorruptFileError(
            f"{label}: the file has {extra:,} more byte{'' if extra == 1 else 's'} than the header "
            f"accounts for (its data ends at byte {file_end:,}, the file at byte {size:,})"
        )
    return SafetensorsHeader(tuple(ordered), metadata, bytes_read)


def _read_header_bytes(stream: IO[bytes], size: int, label: str) -> bytes:
    """The ``N`` header bytes after the length field, once ``N`` is known to fit the file."""
    if size == 0:
        raise CorruptFileError(f"{label}: file is empty (0 bytes)")
    length = int.from_bytes(read_exact(stream, 8, "the header length", label), "little")
    if length > MAX_HEADER_SIZE:
        stream.seek(0)
        if is_lfs_pointer(stream.read(len(LFS_POINTER))):
            raise lfs_pointer_error(label)
        raise CorruptFileError(
            f"{label}: header length {length:,} exceeds the safetensors limit of "
            f"{MAX_HEADER_SIZE:,} bytes: not a safetensors file?"
        )
    if 8 + length > size:
        raise CorruptFileError(
            f"{label}: file ends at byte {size:,} but the header length says the header "
            f"ends at byte {8 + length:,}: truncated download?"
        )
    return read_exact(stream, length, "the JSON header", label)


class _BadEntry(Exception):
    """A problem with one tensor entry; the caller prefixes the path and the tensor's key."""


def _parse_entries(
    document: dict[str, Any], label: str
) -> tuple[dict[str, str], list[HeaderEntry]]:
    metadata: dict[str, str] = {}
    entries: list[HeaderEntry] = []
    for key, value in document.items():
        if key == "__metadata__":
            metadata = _parse_metadata(value, label)
            continue
        try:
            entries.append(_parse_entry(key, value))
        except _BadEntry as exc:
            raise CorruptFileError(f"{label}: tensor {quote(key)}: {exc}") from None
    return metadata, entries


def _parse_entry(key: str, value: Any) -> HeaderEntry:
    if not isinstance(value, dict):
        raise _BadEntry(f"entry is a JSON {json_type(value)}, not an object")
    for field in ("dtype", "shape", "data_offsets"):
        if field not in value:
            raise _BadEntry(f"missing field {field!r}")
    # Other fields are ignored, as by the library, whose parser refuses deep nesting anywhere.
    if len(value) > 3 and 1 + nesting_depth(value) > MAX_NESTING:
        raise _BadEntry(f"entry nests more than {MAX_NESTING} levels deep")
    code = value["dtype"]
    if not isinstance(code, str) or element_bits(code) is None:
        raise _BadEntry(f"unknown dtype {describe(code)}")
    shape = _usize_list(value["shape"], "shape")
    offsets = _usize_list(value["data_offsets"], "data_offsets")
    if len(offsets) != 2:
        raise _BadEntry(f"data_offsets must be [begin, end], not {len(offsets)} numbers")
    return HeaderEntry(key, code, tuple(shape), offsets[0], offsets[1])


def _parse_metadata(value: Any, label: str) -> dict[str, str]:
    if value is None:  # the library reads a null __metadata__ as absent
        return {}
    if not isinstance(value, dict):
        raise CorruptFileError(
            f"{label}: __metadata__ is a JSON {json_type(value)}, not an object of strings"
        )
    for name, text in value.items():
        if not isinstance(text, str):
            raise CorruptFileError(
                f"{label}: __metadata__ {quote(name)} is a JSON {json_type(text)}, not a string"
            )
    # Sorted: the library writes __metadata__ from a hash map, in a different order each time.
    return dict(sorted(value.items()))


def _usize_list(value: Any, field: str) -> list[int]:
    if not isinstance(value, list):
        raise _BadEntry(f"{field} is a JSON {json_type(value)}, not an array")
    for item in value:
        # bool is an int in Python but not a number in JSON.
        if isinstance(item, bool) or not isinstance(item, int) or not 0 <= item < _USIZE_LIMIT:
            raise _BadEntry(f"{field} holds {describe(item)}, not a non-negative 64-bit integer")
    return value


def _check_layout(entries: list[HeaderEntry], label: str) -> tuple[list[HeaderEntry], int]:
    """Entries in data order, and the end of the data section, as ``Metadata::validate`` checks."""
    # sorted() is stable: entries with identical offsets (empty tensors) keep header order.
    ordered = sorted(entries, key=lambda entry: (entry.begin, entry.end))
    start = 0
    for entry in ordered:
        try:
            _check_entry_layout(entry, start)
        except _BadEntry as exc:
            raise CorruptFileError(f"{label}: tensor {quote(entry.key)}: {exc}") from None
        start = entry.end
    return ordered, start


def _check_entry_layout(entry: HeaderEntry, start: int) -> None:
    """Check one entry, which must begin where the one before it (in data order) ended."""
    begin, end = entry.begin, entry.end
    if end < begin:
        raise _BadEntry(f"data_offsets [{begin:,}, {end:,}] end before they begin")
    if begin > start:
        raise _BadEntry(
            f"data_offsets [{begin:,}, {end:,}] leave a hole: bytes {start:,} to {begin:,} of "
            "the data section belong to no tensor"
        )
    if begin < start:
        raise _BadEntry(
            f"data_offsets [{begin:,}, {end:,}] overlap the tensor before it, which ends at "
            f"{start:,}"
        )
    needed = _needed_bytes(entry)
    if end - begin != needed:
        raise _BadEntry(
            f"data_offsets [{begin:,}, {end:,}] hold {end - begin:,} bytes but shape "
            f"{list(entry.shape)} of {entry.dtype_code} needs {needed:,}"
        )


def _needed_bytes(entry: HeaderEntry) -> int:
    # Multiply left to right and stop at 2**64 exactly as the library's checked_mul does, so a
    # shape like [2**40, 2**40, 0] is refused even though it has no elements.
    count = 1
    for dim in entry.shape:
        count *= dim
        if count >= _USIZE_LIMIT:
            break
    bits = count * (element_bits(entry.dtype_code) or 0)
    if count >= _USIZE_LIMIT or bits >= _USIZE_LIMIT:
        raise _BadEntry(f"shape {list(entry.shape)} of {entry.dtype_code} overflows a 64-bit size")
    if bits % 8:
        raise _BadEntry(
            f"shape {list(entry.shape)} of {entry.dtype_code} is {bits:,} bits, not a whole "
            "number of bytes"
        )
    return bits // 8
