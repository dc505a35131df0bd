"""Walks protobuf wire-format fields straight from a file, reading only the fields asked for.

A SavedModel's ``saved_model.pb`` is mostly GraphDef (the function library, megabytes); ckptdiff
needs only a MetaGraphDef's tags, signatures and object graph. Walking the outer messages field
by field and seeking past the rest keeps ``bytes_read`` small and memory flat.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ckptdiff.errors import CorruptFileError
from ckptdiff.readers.base import CountingFile
from ckptdiff.readers.tf.sstable import TableFormatError, decode_varint, read_at

VARINT, FIXED64, LENGTH_DELIMITED, FIXED32 = 0, 1, 2, 5
_FIXED_SIZES = {FIXED64: 8, FIXED32: 4}


@dataclass(frozen=True)
class WireField:
    """One field of a message on disk: its number, wire type, and value or byte range."""

    number: int
    wire_type: int
    value: int  # the varint/fixed value, or the offset of a length-delimited payload
    length: int = 0


def iter_fields(file: CountingFile, start: int, end: int, path: str,
                what: str) -> Iterator[WireField]:
    """The fields of the message stored at ``file[start:end]``, payloads left unread."""
    pos = start
    while pos < end:
        file.seek(pos)
        head = file.read(min(20, end - pos))
        try:
            tag, used = decode_varint(head, 0, len(head))
            number, wire_type = tag >> 3, tag & 7
            if number == 0:
                raise TableFormatError("field number 0")
            if wire_type in (VARINT, LENGTH_DELIMITED):
                value, used = decode_varint(head, used, len(head))
            elif wire_type in _FIXED_SIZES:
                size = _FIXED_SIZES[wire_type]
                if used + size > len(head):
                    raise TableFormatError("fixed-width field runs past the message")
                value, used = int.from_bytes(head[used:used + size], "little"), used + size
            else:
                raise TableFormatError(f"unsupported wire type {wire_type}")
        except TableFormatError as exc:
            raise CorruptFileError(f"{path}: bad protobuf in {what} at byte {pos:,}: {exc}")\
                from None
        pos += used
        if wire_type == LENGTH_DELIMITED:
            if pos + value > end:
                raise CorruptFileError(
                    f"{path}: field {number} of {what} ({value:,} bytes at byte {pos:,}) runs "
                    f"past its end (byte {end:,}): truncated?")
            yield WireField(number, wire_type, pos, value)
            pos += value
        else:
            yield WireField(number, wire_type, value)


def read_payload(file: CountingFile, field: WireField, limit: int, path: str, what: str) -> bytes:
    """The bytes of a length-delimited field, refusing ones over ``limit``."""
    if field.length > limit:
        raise CorruptFileError(
            f"{path}: {what} is {field.length:,} bytes, over ckptdiff's limit of {limit:,}")
    return read_at(file, field.value, field.length, what, path)
