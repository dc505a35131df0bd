"""Zip archives from strangers: the central directory checked, members read with their local
headers verified and their expansion bounded.

Two zip parsers that disagree about an archive are an attack: if ckptdiff reads one
``data.pkl`` and torch another, a checked file is not the loaded one. So an archive is refused
when its members could be read differently by another reader: duplicate names (also
case-insensitively: miniz, torch's zip library, looks names up without case), names with ``..``,
absolute or drive paths, backslashes or NULs, members that overlap or run past the end of the
file, stored members whose two sizes differ, and a local header that disagrees with the central
directory (name, compression method, sizes, CRC) for every member that is read. Compressed
members may expand at most :data:`~ckptdiff.readers.safety.MAX_COMPRESSION_RATIO` times (zip
bombs), and never beyond the size they declare. Reading a member costs exactly the bytes
``zipfile`` itself would read: the local header, the name, and the data.
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from typing import IO, Any

from ckptdiff.errors import CorruptFileError
from ckptdiff.readers.base import read_exact
from ckptdiff.readers.safety import (
    COMPRESSION_FLOOR_BYTES,
    MAX_COMPRESSION_RATIO,
    MAX_ZIP_ENTRIES,
    shown,
)

LOCAL_HEADER = struct.Struct("<4sHHHHHLLLHH")
LOCAL_MAGIC = b"PK\x03\x04"
_ENCRYPTED = 0x01
_DATA_DESCRIPTOR = 0x08
_UTF8_NAME = 0x800
_ZIP64_LIMIT = 0xFFFFFFFF


def check_zip_directory(archive: zipfile.ZipFile, file_size: int, path: str) -> None:
    """Refuse a central directory that another zip reader could read differently."""
    infos = archive.infolist()
    if len(infos) > MAX_ZIP_ENTRIES:
        raise CorruptFileError(f"{path}: the zip archive has {len(infos):,} entries, more than "
                               f"ckptdiff's limit of {MAX_ZIP_ENTRIES:,}")
    seen: dict[str, str] = {}
    for info in infos:
        name = info.orig_filename
        problem = _name_problem(name)
        if problem:
            raise CorruptFileError(f"{path}: refused zip entry {shown(name)!r}: {problem}")
        folded = name.casefold()
        if folded in seen:
            raise CorruptFileError(
                f"{path}: refused: the zip archive holds {shown(seen[folded])!r} and "
                f"{shown(name)!r}, names that zip readers can confuse")
        seen[folded] = name
        if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
            raise CorruptFileError(f"{path}: zip entry {shown(name)!r} is stored uncompressed "
                                   "but its two sizes differ: corrupt archive")
    _check_extents(infos, file_size, path)


def open_torch_archive(file: IO[bytes], size: int, path: str) -> zipfile.ZipFile:
    """The zip archive of a torch file (``torch.save``, ``torch.jit.save``, ``torch.export``),
    opened with every check: a one-line error when the central directory cannot be read, the
    directory's sanity (:func:`check_zip_directory`) and its position as torch's miniz reads it
    (:func:`check_directory_position`)."""
    try:
        archive = zipfile.ZipFile(file)
    except Exception as exc:  # BadZipFile, EOFError, OSError, ValueError … on damaged input
        lines = str(exc).strip().splitlines()
        reason = lines[0][:160] if lines and lines[0] else type(exc).__name__
        raise CorruptFileError(f"{path}: the zip central directory is missing or damaged "
                               f"({reason}): truncated download?") from None
    check_zip_directory(archive, size, path)
    check_directory_position(file, path)
    return archive


def check_directory_position(file: IO[bytes], path: str) -> None:
    """Refuse an archive whose central directory is not where its end record says.

    Python's ``zipfile`` trusts the directory that ends at the end record and shifts every
    offset by the difference; torch's miniz trusts the offset the end record states. They read
    the same members only when the two agree, so a second archive appended to the file, hidden
    in the zip comment or data put in front of it is refused.
    """
    zip_internals: Any = zipfile  # the end-record helpers ZipFile itself uses (untyped)
    end = zip_internals._EndRecData(file)
    if end is None:
        return
    location = end[zip_internals._ECD_LOCATION]
    size, stated = end[zip_internals._ECD_SIZE], end[zip_internals._ECD_OFFSET]
    if end[zip_internals._ECD_SIGNATURE] == zip_internals.stringEndArchive64:
        location -= zip_internals.sizeEndCentDir64 + zip_internals.sizeEndCentDir64Locator
    if location - size != stated:
        raise CorruptFileError(
            f"{path}: refused: the zip central directory is at byte {location - size:,} but the "
            f"end record says {stated:,}, so zip readers disagree on the members (an archive "
            "appended to another, or hidden in its comment?)")


def _name_problem(name: str) -> str | None:
    if not name or "\x00" in name or "\\" in name:
        return "empty name, NUL or backslash"
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return "an absolute path"
    if ".." in name.split("/"):  # (PurePosixPath(name).parts, without building it)
        return "a path with '..'"
    return None


def _check_extents(infos: list[zipfile.ZipInfo], file_size: int, path: str) -> None:
    # Each member occupies at least its local header, name and data; no two may overlap (the
    # trick behind non-recursive zip bombs) and none may pass the end of the file.
    for info in infos:  # the central directory's numbers, adjusted by zipfile, may be nonsense
        if min(info.header_offset, info.compress_size, info.file_size) < 0:
            raise CorruptFileError(f"{path}: zip entry {shown(info.orig_filename)!r} has a "
                                   "negative offset or size: damaged file?")
    ordered = sorted(infos, key=lambda info: info.header_offset)
    for this, following in zip(ordered, [*ordered[1:], None], strict=False):
        end = (this.header_offset + LOCAL_HEADER.size + len(_encoded_name(this))
               + this.compress_size)
        limit = file_size if following is None else following.header_offset
        if end > limit:
            where = ("past the end of the file" if following is None
                     else f"into entry {shown(following.orig_filename)!r}")
            raise CorruptFileError(
                f"{path}: zip entry {shown(this.orig_filename)!r} would end at byte {end:,}, "
                f"{where} (byte {limit:,}): truncated or damaged file?")


def _encoded_name(info: zipfile.ZipInfo) -> bytes:
    encoding = "utf-8" if info.flag_bits & _UTF8_NAME else "cp437"
    try:
        return info.orig_filename.encode(encoding)
    except UnicodeEncodeError:
        return info.orig_filename.encode("utf-8")


def check_expansion(info: zipfile.ZipInfo, path: str) -> None:
    """Refuse a compressed member that would expand more than a checkpoint member can (a bomb)."""
    allowed = max(MAX_COMPRESSION_RATIO * info.compress_size, COMPRESSION_FLOOR_BYTES)
    if info.compress_type != zipfile.ZIP_STORED and info.file_size > allowed:
        raise CorruptFileError(
            f"{path}: refused {shown(info.orig_filename)}: {info.compress_size:,} compressed "
            f"bytes that expand to {info.file_size:,} (more than {MAX_COMPRESSION_RATIO}x): "
            "a zip bomb?")


def local_header_problem(info: zipfile.ZipInfo, header: bytes,
                         local_name: bytes | None = None) -> str | None:
    """How the 30-byte local ``header`` (and the name after it, when read) disagrees with the
    central directory's ``info``, phrased to go before "the central directory"; else None."""
    magic, _, flags, method, _, _, crc, compressed, size, _, _ = LOCAL_HEADER.unpack(header)
    if magic != LOCAL_MAGIC:
        return "is missing where"
    if local_name is not None and local_name != _encoded_name(info):
        return f"names {shown(local_name.decode('utf-8', 'replace'))!r}, unlike"
    if method != info.compress_type:
        return f"says compression method {method}, unlike"
    if not flags & _DATA_DESCRIPTOR:
        sizes = [(compressed, info.compress_size), (size, info.file_size)]
        if crc != info.CRC or any(local not in (central, _ZIP64_LIMIT) for local, central in sizes):
            return "gives other sizes or CRC than"
    return None


def read_member(file: IO[bytes], info: zipfile.ZipInfo, path: str, limit: int) -> bytes:
    """The bytes of one member, at most ``limit`` of them, after checking its local header."""
    name = shown(info.orig_filename)
    if info.file_size > limit:
        raise CorruptFileError(f"{path}: {name} declares {info.file_size:,} bytes, more than "
                               f"the {limit:,} ckptdiff reads for it")
    check_expansion(info, path)
    if min(info.header_offset, info.compress_size) < 0:
        raise CorruptFileError(f"{path}: zip entry {name} has a negative offset or size: "
                               "damaged file?")
    file.seek(info.header_offset)
    header = read_exact(file, LOCAL_HEADER.size, f"the zip header of {name}", path)
    name_length, extra_length = LOCAL_HEADER.unpack(header)[-2:]
    if (LOCAL_HEADER.unpack(header)[2] | info.flag_bits) & _ENCRYPTED:
        raise CorruptFileError(f"{path}: refused {name}: the zip entry is encrypted")
    local_name = read_exact(file, name_length, f"the zip header of {name}", path)
    mismatch = local_header_problem(info, header, local_name)
    if mismatch:
        raise CorruptFileError(f"{path}: refused {name}: its local zip header {mismatch} "
                               "the central directory")
    read_exact(file, extra_length, f"the zip header of {name}", path)  # as zipfile does
    data = read_exact(file, info.compress_size, f"zip entry {name}", path)
    if info.compress_type == zipfile.ZIP_DEFLATED:
        data = _inflate(data, info.file_size, name, path)
    elif info.compress_type != zipfile.ZIP_STORED:
        raise CorruptFileError(f"{path}: {name} uses zip compression method "
                               f"{info.compress_type}, which checkpoint writers do not use")
    if len(data) != info.file_size or zlib.crc32(data) != info.CRC:
        raise CorruptFileError(f"{path}: {name} fails its zip size or CRC check: damaged file?")
    return data


def _inflate(data: bytes, size: int, name: str, path: str) -> bytes:
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, size + 1)  # never more than declared, plus one to see
    except zlib.error as exc:
        raise CorruptFileError(f"{path}: {name} holds damaged compressed data ({exc})") from None
    if len(out) > size or not inflater.eof:
        raise CorruptFileError(f"{path}: {name} does not decompress to its declared "
                               f"{size:,} bytes: damaged file?")
    return out
