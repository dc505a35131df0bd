"""A small, bounded decompressor for raw Snappy blocks (TensorFlow table block type 1).

TensorFlow writes ``.index`` blocks uncompressed, but its table reader also accepts
Snappy-compressed blocks, so ckptdiff does too. Every length and offset is checked before use,
and the output size is bounded both absolutely and by the largest expansion Snappy can encode.
"""

from __future__ import annotations


class SnappyError(ValueError):
    """The bytes are not a valid raw Snappy block (the caller names the file)."""


# One 3-byte copy element yields at most 64 bytes: no valid block expands more than ~22x.
_MAX_EXPANSION = 22
MAX_OUTPUT_BYTES = 256 * 1024 * 1024


def _varint32(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 28:
            raise SnappyError("bad length preamble")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def uncompressed_length(data: bytes) -> int:
    """The decompressed size a block declares, validated against its compressed size."""
    length, _ = _varint32(data, 0)
    if length > MAX_OUTPUT_BYTES or length > _MAX_EXPANSION * len(data) + 64:
        raise SnappyError(f"declared size {length:,} is impossible for {len(data):,} input bytes")
    return length


def decompress(data: bytes) -> bytes:
    """Decompress one raw (unframed) Snappy block."""
    expected = uncompressed_length(data)
    _, pos = _varint32(data, 0)
    out = bytearray()
    end = len(data)
    while pos < end:
        tag = data[pos]
        pos += 1
        kind = tag & 3
        if kind == 0:  # literal; lengths of 61+ bytes follow the tag in 1-4 bytes
            length = tag >> 2
            if length >= 60:
                extra = length - 59
                if pos + extra > end:
                    raise SnappyError("truncated literal length")
                length = int.from_bytes(data[pos:pos + extra], "little")
                pos += extra
            length += 1
            if pos + length > end or len(out) + length > expected:
                raise SnappyError("literal runs past the block")
            out += data[pos:pos + length]
            pos += length
            continue
        if kind == 1:  # copy, 11-bit offset
            if pos + 1 > end:
                raise SnappyError("truncated copy")
            length = 4 + ((tag >> 2) & 7)
            offset = ((tag >> 5) << 8) | data[pos]
            pos += 1
        else:  # copy, 16- or 32-bit offset
            width = 2 if kind == 2 else 4
            if pos + width > end:
                raise SnappyError("truncated copy")
            length = 1 + (tag >> 2)
            offset = int.from_bytes(data[pos:pos + width], "little")
            pos += width
        if offset == 0 or offset > len(out) or len(out) + length > expected:
            raise SnappyError("copy refers outside the output")
        start = len(out) - offset
        if offset >= length:
            out += out[start:start + length]
        else:  # overlapping copy repeats the last ``offset`` bytes
            pattern = bytes(out[start:])
            out += (pattern * (length // offset + 1))[:length]
    if len(out) != expected:
        raise SnappyError(f"block decompresses to {len(out):,} bytes, declared {expected:,}")
    return bytes(out)
