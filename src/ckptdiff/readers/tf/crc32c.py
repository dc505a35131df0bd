"""CRC-32C (Castagnoli), the checksum of TensorFlow's table blocks and bundle entries.

TensorFlow stores checksums "masked" (rotated and offset) so that a CRC of data that itself holds
CRCs stays well distributed; :func:`unmask` undoes that. Pure Python, slicing-by-8 (eight bytes
per loop step, ~1.4x the byte-at-a-time loop): used on index blocks and the one small
object-graph tensor, never on weights.
"""

from __future__ import annotations

import struct

_POLYNOMIAL = 0x82F63B78  # Castagnoli, bit-reversed
_MASK_DELTA = 0xA282EAD8


def _make_tables() -> tuple[tuple[int, ...], ...]:
    """Table k maps a byte to its CRC contribution when followed by k zero bytes."""
    first = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _POLYNOMIAL if crc & 1 else crc >> 1
        first.append(crc)
    tables = [first]
    for _ in range(7):
        previous = tables[-1]
        tables.append([(value >> 8) ^ first[value & 0xFF] for value in previous])
    return tuple(tuple(table) for table in tables)


_T0, _T1, _T2, _T3, _T4, _T5, _T6, _T7 = _make_tables()


def crc32c(data: bytes | bytearray | memoryview, crc: int = 0) -> int:
    """CRC-32C of ``data``, continuing from ``crc`` (the CRC of the bytes before it)."""
    data = bytes(data)
    crc ^= 0xFFFFFFFF
    whole = len(data) - len(data) % 8
    words = struct.unpack_from(f"<{whole // 4}I", data)
    t0, t1, t2, t3, t4, t5, t6, t7 = _T0, _T1, _T2, _T3, _T4, _T5, _T6, _T7
    for i in range(0, len(words), 2):
        low = crc ^ words[i]
        high = words[i + 1]
        crc = (t7[low & 0xFF] ^ t6[(low >> 8) & 0xFF] ^ t5[(low >> 16) & 0xFF] ^ t4[low >> 24]
               ^ t3[high & 0xFF] ^ t2[(high >> 8) & 0xFF] ^ t1[(high >> 16) & 0xFF]
               ^ t0[high >> 24])
    for byte in data[whole:]:
        crc = t0[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def unmask(masked: int) -> int:
    """The CRC a TensorFlow-masked checksum stands for."""
    rotated = (masked - _MASK_DELTA) & 0xFFFFFFFF
    return ((rotated >> 17) | (rotated << 15)) & 0xFFFFFFFF


def mask(crc: int) -> int:
    """TensorFlow's masked form of ``crc`` (inverse of :func:`unmask`)."""
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + _MASK_DELTA) & 0xFFFFFFFF
