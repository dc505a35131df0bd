"""CRC-32C (Castagnoli), the checksum of TensorFlow's table blocks and bundle entries.

TensorFlow stores checksums "masked" (rotated and offset) so that a CRC of data that itself holds
CRCs stays well distributed; :func:`unmask` undoes that. Pure Python: used on index blocks and the
one small object-graph tensor, never on weights.
"""

from __future__ import annotations

_POLYNOMIAL = 0x82F63B78  # Castagnoli, bit-reversed
_MASK_DELTA = 0xA282EAD8


def _make_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _POLYNOMIAL if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_TABLE = _make_table()


def crc32c(data: bytes | bytearray | memoryview, crc: int = 0) -> int:
    """CRC-32C of ``data``, continuing from ``crc`` (the CRC of the bytes before it)."""
    table = _TABLE
    crc ^= 0xFFFFFFFF
    for byte in bytes(data):
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def unmask(masked: int) -> int:
    """The CRC a TensorFlow-masked checksum stands for."""
    rotated = (masked - _MASK_DELTA) & 0xFFFFFFFF
    return ((rotated >> 17) | (rotated << 15)) & 0xFFFFFFFF


def mask(crc: int) -> int:
    """TensorFlow's masked form of ``crc`` (inverse of :func:`unmask`)."""
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + _MASK_DELTA) & 0xFFFFFFFF
