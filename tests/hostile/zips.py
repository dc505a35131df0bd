"""Byte-level zip surgery for hostile archives: patch central-directory and local-header fields."""

from __future__ import annotations

import io
import struct
import warnings
import zipfile
import zlib

CENTRAL = b"PK\x01\x02"
LOCAL = b"PK\x03\x04"
# Field offsets inside a central-directory entry and a local header.
CENTRAL_FIELDS = {"flags": (8, "<H"), "method": (10, "<H"), "crc": (16, "<I"),
                  "csize": (20, "<I"), "usize": (24, "<I"), "offset": (42, "<I")}
LOCAL_FIELDS = {"flags": (6, "<H"), "method": (8, "<H"), "crc": (14, "<I"), "csize": (18, "<I"),
                "usize": (22, "<I")}


def archive(members: list[tuple[str, bytes]], method: int = zipfile.ZIP_STORED) -> bytes:
    """A zip of ``members`` in order (duplicates allowed), built in memory."""
    out = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(out, "w", method) as writer:
        warnings.simplefilter("ignore")  # "Duplicate name": hostile archives want them
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = method
            writer.writestr(info, data)
    return out.getvalue()


def _central_entry(data: bytes, name: str, occurrence: int = 0) -> int:
    pos = data.find(CENTRAL)
    seen = 0
    while pos >= 0:
        length = struct.unpack_from("<H", data, pos + 28)[0]
        if data[pos + 46:pos + 46 + length] == name.encode():
            if seen == occurrence:
                return pos
            seen += 1
        pos = data.find(CENTRAL, pos + 4)
    raise KeyError(name)


def patch_central(data: bytes, name: str, field: str, value: int) -> bytes:
    """``data`` with one central-directory field of member ``name`` replaced."""
    offset, fmt = CENTRAL_FIELDS[field]
    out = bytearray(data)
    struct.pack_into(fmt, out, _central_entry(data, name) + offset, value)
    return bytes(out)


def central_value(data: bytes, name: str, field: str, occurrence: int = 0) -> int:
    offset, fmt = CENTRAL_FIELDS[field]
    return int(struct.unpack_from(fmt, data, _central_entry(data, name, occurrence) + offset)[0])


def patch_local(data: bytes, name: str, field: str, value: int) -> bytes:
    """``data`` with one local-header field of member ``name`` replaced."""
    offset, fmt = LOCAL_FIELDS[field]
    out = bytearray(data)
    struct.pack_into(fmt, out, central_value(data, name, "offset") + offset, value)
    return bytes(out)


def rename_local(data: bytes, name: str, new: str) -> bytes:
    """The local header of ``name`` renamed to ``new`` (same length), the central one kept."""
    assert len(new) == len(name)
    start = central_value(data, name, "offset") + 30
    return data[:start] + new.encode() + data[start + len(name):]


def bomb(name: str, size: int, filler: bytes = b"N0") -> bytes:
    """One deflated member of ``size`` bytes of ``filler`` (about 1,000:1)."""
    raw = (filler * (size // len(filler) + 1))[:size]
    info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as writer:
        writer.writestr(info, raw, compresslevel=9)
    assert zlib.crc32(raw) == central_value(out.getvalue(), name, "crc")
    return out.getvalue()
