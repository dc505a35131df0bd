"""Reads one scalar string tensor from a bundle data shard (the TF2 object graph).

TensorFlow stores a string tensor as the varint64 length of each element, a masked CRC-32C of
those lengths (each taken as a uint32, or uint64 when larger, in the bundle's byte order), then
the element bytes; the entry's own CRC covers the lengths, that checksum and the bytes.
"""

from __future__ import annotations

from ckptdiff.errors import CorruptFileError
from ckptdiff.readers.base import CountingFile
from ckptdiff.readers.tf.bundle import DT_STRING, Bundle, BundleEntry
from ckptdiff.readers.tf.crc32c import crc32c, unmask
from ckptdiff.readers.tf.sstable import TableFormatError, decode_varint, read_at

MAX_STRING_TENSOR_BYTES = 64 * 1024 * 1024
# Pure-Python CRC-32C runs at ~10 MB/s: verify up to this size, trust the length checksum beyond.
MAX_VERIFIED_BYTES = 16 * 1024 * 1024


def _length_bytes(length: int, big_endian: bool) -> bytes:
    width = 4 if length <= 0xFFFFFFFF else 8
    return length.to_bytes(width, "big" if big_endian else "little")


def read_string_scalar(bundle: Bundle, entry: BundleEntry, path: str) -> tuple[bytes, int]:
    """The bytes of scalar string tensor ``entry`` and how many bytes were read for it."""
    if entry.dtype_code != DT_STRING or entry.shape != () or entry.slices:
        raise CorruptFileError(f"{path}: {entry.key!r} is not a scalar string tensor")
    if entry.size > MAX_STRING_TENSOR_BYTES:
        raise CorruptFileError(
            f"{path}: {entry.key!r} is {entry.size:,} bytes, over ckptdiff's limit of "
            f"{MAX_STRING_TENSOR_BYTES:,} for it")
    shard = bundle.shard_path(entry.shard_id)
    try:
        file = CountingFile(shard)
    except OSError as exc:
        raise CorruptFileError(f"{path}: cannot open {shard.name}: {exc.strerror}") from None
    with file:
        data = read_at(file, entry.offset, entry.size, f"{entry.key!r} in {shard.name}", path)
        bytes_read = file.bytes_read
    try:
        length, pos = decode_varint(data, 0, len(data))
    except TableFormatError as exc:
        raise CorruptFileError(f"{path}: bad string length in {entry.key!r}: {exc}") from None
    if pos + 4 + length != len(data):
        raise CorruptFileError(
            f"{path}: string tensor {entry.key!r} holds {len(data):,} bytes, its length says "
            f"{pos + 4 + length:,}: corrupt")
    length_field = _length_bytes(length, bundle.big_endian)
    stored_length_crc = data[pos:pos + 4]
    crc = crc32c(length_field)
    stored = int.from_bytes(stored_length_crc, "big" if bundle.big_endian else "little")
    if unmask(stored) != crc:
        raise CorruptFileError(f"{path}: length checksum mismatch in {entry.key!r}: corrupt")
    value = data[pos + 4:]
    if entry.size <= MAX_VERIFIED_BYTES:
        crc = crc32c(value, crc32c(stored_length_crc, crc))
        if crc != unmask(entry.crc32c):
            raise CorruptFileError(f"{path}: checksum mismatch in {entry.key!r}: corrupt shard")
    return value, bytes_read
