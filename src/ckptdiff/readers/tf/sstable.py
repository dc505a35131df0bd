"""Reads the SSTable ("table") format TensorFlow uses for a checkpoint's ``.index`` file.

Layout (TensorFlow's ``tsl/lib/io`` table, a LevelDB descendant): data blocks of sorted
key/value entries, an index block mapping a separator key to each data block's handle, and a
48-byte footer holding the metaindex and index block handles plus a magic number. Every block is
followed by a 5-byte trailer: its compression type (0 none, 1 Snappy) and a masked CRC-32C of
the block and that type byte. Entries share key prefixes with the entry before them, except at
"restart points", whose offsets close the block. Everything read is bounds-checked against the
file; any inconsistency is a one-line :class:`~ckptdiff.errors.CorruptFileError`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, cast

from ckptdiff.errors import CorruptFileError
from ckptdiff.readers.base import CountingFile, read_exact
from ckptdiff.readers.safety import LFS_POINTER, is_lfs_pointer, lfs_pointer_error
from ckptdiff.readers.tf.crc32c import crc32c, unmask
from ckptdiff.readers.tf.snappy import SnappyError, decompress

TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48
BLOCK_TRAILER_SIZE = 5
NO_COMPRESSION = 0
SNAPPY_COMPRESSION = 1


def read_at(file: CountingFile, offset: int, count: int, what: str, path: str) -> bytes:
    """Exactly ``count`` bytes from ``offset`` or a one-line truncation error naming ``what``."""
    file.seek(offset)
    return read_exact(cast(IO[bytes], file), count, what, path)


def _refuse_lfs_pointer(file: CountingFile, path: str) -> None:
    # Only on the error path: an index that is a Git LFS pointer gets the message that says so.
    file.seek(0)
    if is_lfs_pointer(file.read(len(LFS_POINTER))):
        raise lfs_pointer_error(path, file.name.replace("\\", "/").rsplit("/", 1)[-1])


class TableFormatError(ValueError):
    """Bytes that break the table format; the reader adds the path and what it was reading."""


def decode_varint(data: bytes, pos: int, limit: int, bits: int = 64) -> tuple[int, int]:
    """A little-endian base-128 varint of at most ``bits`` bits at ``data[pos:limit]``."""
    value = shift = 0
    while True:
        if pos >= limit:
            raise TableFormatError("varint runs past its end")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            if value >> bits:
                raise TableFormatError(f"varint exceeds {bits} bits")
            return value, pos
        shift += 7
        if shift >= bits + 7:
            raise TableFormatError("varint too long")


@dataclass(frozen=True)
class BlockHandle:
    """Where a block lives: its offset and size (without the 5-byte trailer)."""

    offset: int
    size: int

    @classmethod
    def decode(cls, data: bytes, pos: int = 0) -> tuple[BlockHandle, int]:
        """Decode a handle (two varint64s) at ``pos``; returns it and the position after it."""
        offset, pos = decode_varint(data, pos, len(data))
        size, pos = decode_varint(data, pos, len(data))
        return cls(offset, size), pos


def parse_block(block: bytes) -> list[tuple[bytes, bytes]]:
    """Every (key, value) entry of one uncompressed block, with its restart points checked."""
    if len(block) < 4:
        raise TableFormatError(f"block of {len(block)} bytes has no restart count")
    num_restarts = int.from_bytes(block[-4:], "little")
    if num_restarts < 1 or num_restarts > (len(block) - 4) // 4:
        raise TableFormatError(f"block claims {num_restarts:,} restart points")
    limit = len(block) - 4 * (num_restarts + 1)
    restarts = [int.from_bytes(block[limit + 4 * i:limit + 4 * i + 4], "little")
                for i in range(num_restarts)]
    if restarts[0] != 0 or any(b <= a for a, b in zip(restarts, restarts[1:], strict=False)):
        raise TableFormatError("restart points are not increasing from 0")
    restart_set = set(restarts)
    entries: list[tuple[bytes, bytes]] = []
    starts: set[int] = set()
    key = b""
    pos = 0
    while pos < limit:
        start = pos
        starts.add(start)
        shared, pos = decode_varint(block, pos, limit, 32)
        unshared, pos = decode_varint(block, pos, limit, 32)
        value_size, pos = decode_varint(block, pos, limit, 32)
        if shared > len(key) or (shared and start in restart_set):
            raise TableFormatError("entry shares more of the key than it may")
        if pos + unshared + value_size > limit:
            raise TableFormatError("entry runs past the end of its block")
        key = key[:shared] + block[pos:pos + unshared]
        pos += unshared
        entries.append((key, block[pos:pos + value_size]))
        pos += value_size
    if not restart_set <= starts:
        raise TableFormatError("a restart point is not at the start of an entry")
    return entries


class TableReader:
    """The entries of one table file, read block by block (bytes counted by ``file``)."""

    def __init__(self, file: CountingFile, path: str) -> None:
        self.file = file
        self.path = path
        self.blocks_read = 0
        self.compressed_blocks = 0
        if file.size < FOOTER_SIZE:
            raise CorruptFileError(
                f"{path}: {file.size:,} bytes is too short for a TensorFlow checkpoint index "
                f"(the table footer alone is {FOOTER_SIZE} bytes): truncated?")
        footer = read_at(file, file.size - FOOTER_SIZE, FOOTER_SIZE, "the table footer", path)
        if int.from_bytes(footer[-8:], "little") != TABLE_MAGIC:
            _refuse_lfs_pointer(file, path)
            raise CorruptFileError(
                f"{path}: not a TensorFlow checkpoint index (no table magic number at the end): "
                "truncated or not an .index file")
        try:
            _metaindex, pos = BlockHandle.decode(footer[:40])
            self.index_handle, _ = BlockHandle.decode(footer[:40], pos)
        except TableFormatError as exc:
            raise CorruptFileError(f"{path}: bad table footer: {exc}") from None

    def read_block(self, handle: BlockHandle, what: str) -> bytes:
        """The uncompressed contents of the block at ``handle``, checksum verified."""
        end = self.file.size - FOOTER_SIZE
        if handle.offset + handle.size + BLOCK_TRAILER_SIZE > end:
            raise CorruptFileError(
                f"{self.path}: {what} ({handle.size:,} bytes at byte {handle.offset:,}) lies "
                f"past the end of the data ({end:,} bytes): truncated or corrupt")
        raw = read_at(self.file, handle.offset, handle.size + BLOCK_TRAILER_SIZE, what, self.path)
        self.blocks_read += 1
        stored = unmask(int.from_bytes(raw[-4:], "little"))
        if crc32c(raw[:-4]) != stored:
            raise CorruptFileError(f"{self.path}: checksum mismatch in {what}: corrupt file")
        contents, compression = raw[:handle.size], raw[handle.size]
        if compression == NO_COMPRESSION:
            return contents
        if compression == SNAPPY_COMPRESSION:
            self.compressed_blocks += 1
            try:
                return decompress(contents)
            except SnappyError as exc:
                raise CorruptFileError(f"{self.path}: bad Snappy data in {what}: {exc}") from None
        raise CorruptFileError(f"{self.path}: unknown compression type {compression} in {what}")

    def _parse(self, block: bytes, what: str) -> list[tuple[bytes, bytes]]:
        try:
            return parse_block(block)
        except TableFormatError as exc:
            raise CorruptFileError(f"{self.path}: bad {what}: {exc}") from None

    def entries(self) -> Iterator[tuple[bytes, bytes]]:
        """Every (key, value) in key order; keys must be strictly increasing."""
        index = self._parse(self.read_block(self.index_handle, "the index block"), "index block")
        previous: bytes | None = None
        for number, (separator, handle_bytes) in enumerate(index):
            what = f"data block {number}"
            try:
                handle, _ = BlockHandle.decode(handle_bytes)
            except TableFormatError as exc:
                raise CorruptFileError(f"{self.path}: bad handle of {what}: {exc}") from None
            for key, value in self._parse(self.read_block(handle, what), what):
                if previous is not None and key <= previous:
                    raise CorruptFileError(f"{self.path}: keys out of order in {what}: corrupt")
                if key > separator:
                    raise CorruptFileError(f"{self.path}: {what} holds keys past its index entry")
                previous = key
                yield key, value
