"""A small writer (and a seed-only reader) of TensorFlow's table format, for the tf.train edits.

An edit of a ``BundleEntryProto`` must reach the bundle layer rather than die at a block
checksum, so the mutated entries are written back as a valid table: sorted (or, on purpose,
unsorted) entries, prefix-shared keys with restart points every ``restart_interval`` entries,
data blocks of about ``block_size`` bytes, an index block of separator keys, an empty metaindex
block and the 48-byte footer; blocks are optionally Snappy-"compressed" (literal elements only,
a valid Snappy stream that TensorFlow's reader inflates). Also the string tensor encoding, so
that an edited object graph can be written into a data shard with its checksums.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ckptdiff.readers.tf.crc32c import crc32c, mask

TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48
Entry = tuple[bytes, bytes]


def varint(value: int) -> bytes:
    """``value`` as a little-endian base-128 varint (negative values as 64-bit, as protobuf)."""
    value &= (1 << 64) - 1
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def snappy_literals(data: bytes) -> bytes:
    """A raw Snappy block holding ``data`` as literal elements of at most 60 bytes."""
    out = bytearray(varint(len(data)))
    for start in range(0, len(data), 60):
        chunk = data[start:start + 60]
        out.append((len(chunk) - 1) << 2)
        out += chunk
    return bytes(out)


def block_bytes(entries: list[Entry], restart_interval: int) -> bytes:
    """One block: prefix-shared entries, then the restart offsets and their count."""
    out = bytearray()
    restarts: list[int] = []
    previous = b""
    for number, (key, value) in enumerate(entries):
        shared = 0
        if number % restart_interval == 0:
            restarts.append(len(out))
        else:
            limit = min(len(previous), len(key))
            while shared < limit and previous[shared] == key[shared]:
                shared += 1
        out += varint(shared) + varint(len(key) - shared) + varint(len(value))
        out += key[shared:] + value
        previous = key
    restarts = restarts or [0]
    out += b"".join(struct.pack("<I", r) for r in restarts) + struct.pack("<I", len(restarts))
    return bytes(out)


@dataclass
class Layout:
    """How :func:`write_table` lays the entries out (the defaults are TensorFlow's)."""

    block_size: int = 4096
    restart_interval: int = 16
    snappy: bool = False
    separator: str = "last"  # "last" key of the block, "short" (a shorter one), "first" (wrong)


def _separator(block: list[Entry], following: list[Entry] | None, how: str) -> bytes:
    last = block[-1][0]
    if how == "first":
        return block[0][0]
    if how == "short" and following:  # the shortest prefix of the next key still above ``last``
        nxt = following[0][0]
        for size in range(1, len(nxt) + 1):
            if nxt[:size] > last:
                return nxt[:size]
    return last


def write_table(entries: list[Entry], layout: Layout | None = None) -> bytes:
    """A complete table file holding ``entries`` in the order given."""
    layout = layout or Layout()
    blocks: list[list[Entry]] = [[]]
    size = 0
    for entry in entries:
        if blocks[-1] and size >= layout.block_size:
            blocks.append([])
            size = 0
        blocks[-1].append(entry)
        size += len(entry[0]) + len(entry[1]) + 3
    out = bytearray()

    def emit(contents: bytes) -> bytes:
        kind = 0
        if layout.snappy:
            contents, kind = snappy_literals(contents), 1
        handle = varint(len(out)) + varint(len(contents))
        trailer = bytes([kind])
        out.extend(contents + trailer + struct.pack("<I", mask(crc32c(contents + trailer))))
        return handle

    index: list[Entry] = []
    for number, block in enumerate(blocks):
        if not block:
            continue
        handle = emit(block_bytes(block, layout.restart_interval))
        following = blocks[number + 1] if number + 1 < len(blocks) else None
        index.append((_separator(block, following, layout.separator), handle))
    metaindex = emit(block_bytes([], 1))
    index_handle = emit(block_bytes(index, 1))
    footer = (metaindex + index_handle).ljust(40, b"\0") + struct.pack("<Q", TABLE_MAGIC)
    return bytes(out) + footer


def read_table(data: bytes) -> list[Entry]:
    """The entries of an uncompressed table TensorFlow wrote (the seeds only: no checks)."""
    offset, pos = _read_varint(data, len(data) - FOOTER_SIZE)
    _, pos = _read_varint(data, pos)
    offset, pos = _read_varint(data, pos)
    size, _ = _read_varint(data, pos)
    entries: list[Entry] = []
    for _, handle in _block_entries(data[offset:offset + size]):
        block_offset, pos = _read_varint(handle, 0)
        block_size, _ = _read_varint(handle, pos)
        entries += _block_entries(data[block_offset:block_offset + block_size])
    return entries


def _block_entries(block: bytes) -> list[Entry]:
    count = struct.unpack("<I", block[-4:])[0]
    limit = len(block) - 4 * (count + 1)
    entries: list[Entry] = []
    pos, key = 0, b""
    while pos < limit:
        shared, pos = _read_varint(block, pos)
        unshared, pos = _read_varint(block, pos)
        size, pos = _read_varint(block, pos)
        key = key[:shared] + block[pos:pos + unshared]
        entries.append((key, block[pos + unshared:pos + unshared + size]))
        pos += unshared + size
    return entries


def string_scalar(value: bytes) -> tuple[bytes, int]:
    """A scalar string tensor as a bundle stores it, and the masked CRC its entry records."""
    length = struct.pack("<I", len(value))
    length_crc = struct.pack("<I", mask(crc32c(length)))
    crc = crc32c(value, crc32c(length_crc, crc32c(length)))
    return varint(len(value)) + length_crc + value, mask(crc)
