"""The small records of a ``torch.save`` zip that torch parses before it unpickles anything.

torch's archive reader (``PyTorchStreamReader``, miniz underneath) refuses an archive whose
``version`` record (``.data/version`` when both exist) does not parse with ``std::stoull`` to a
file-format version from 1 to 10, and ``torch.load`` then calls ``int()`` on the
``.storage_alignment`` record. ckptdiff must refuse what torch refuses, or it would judge
"compatible" a file that never loads, so both records are parsed here exactly as torch does: the
version the way ``std::stoull`` reads a C string (leading C whitespace, a sign, the digits up to
the first other byte, a negative value wrapping modulo 2**64, the result compared as a signed
64-bit number, which is what torch 2.13 does), the alignment with Python's own ``int``.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable

from ckptdiff.errors import CorruptFileError
from ckptdiff.readers.base import Location

# caffe2/serialize/versions.h: kMinSupportedFileFormatVersion, kMaxSupportedFileFormatVersion.
MIN_FILE_FORMAT_VERSION = 1
MAX_FILE_FORMAT_VERSION = 10
# A record longer than this is refused rather than read: torch's own records are a few bytes.
MAX_RECORD_BYTES = 4096

_C_WHITESPACE = b" \t\n\v\f\r"
_STOULL = re.compile(rb"([+-]?)([0-9]+)")
_UINT64 = 1 << 64

ReadRecord = Callable[[zipfile.ZipInfo, int], bytes]


def stoull_as_int64(raw: bytes) -> int | None:
    """``(int64_t) std::stoull(raw)`` as torch computes a version; ``None`` where it throws."""
    text = raw.split(b"\0", 1)[0].lstrip(_C_WHITESPACE)  # c_str() ends at the first NUL
    match = _STOULL.match(text)
    if match is None:
        return None  # std::invalid_argument
    sign, digits = match.groups()
    if len(digits.lstrip(b"0")) > 20 or int(digits) >= _UINT64:
        return None  # std::out_of_range
    value = (-int(digits)) % _UINT64 if sign == b"-" else int(digits)
    return value - _UINT64 if value >= _UINT64 >> 1 else value


def check_format_records(read: ReadRecord, members: dict[str, zipfile.ZipInfo], root: str,
                         path: Location) -> int:
    """Refuse the archive where ``torch.load`` would refuse its ``version`` or
    ``.storage_alignment`` record; return the file-format version. ``read`` reads one member,
    at most n bytes."""
    version = check_version_record(read, members, root, path)
    alignment = members.get(f"{root}/.storage_alignment")
    if alignment is not None:
        text = read(alignment, MAX_RECORD_BYTES)
        try:
            int(text)  # torch.serialization._load does exactly this
        except ValueError:
            raise CorruptFileError(f"{path}: {alignment.filename} says {text[:16]!r}, not the "
                                   "integer torch.load requires") from None
    return version


def check_version_record(read: ReadRecord, members: dict[str, zipfile.ZipInfo], root: str,
                         path: Location) -> int:
    """Refuse the archive where torch's archive reader refuses its ``version`` record (every
    torch zip: ``torch.load``, ``torch.jit.load`` and ``torch.export.load`` open it with
    ``PyTorchStreamReader``, which checks it first); return the file-format version."""
    info = members.get(f"{root}/.data/version") or members.get(f"{root}/version")
    if info is None:
        raise CorruptFileError(f"{path}: the archive has no version record, without which "
                               "torch refuses it")
    raw = read(info, MAX_RECORD_BYTES)
    version = stoull_as_int64(raw)
    if version is None:
        raise CorruptFileError(f"{path}: {info.filename} says {raw[:16]!r}, which torch cannot "
                               "parse as a file-format version")
    if not MIN_FILE_FORMAT_VERSION <= version <= MAX_FILE_FORMAT_VERSION:
        raise CorruptFileError(
            f"{path}: {info.filename} says file-format version {version}, outside the "
            f"{MIN_FILE_FORMAT_VERSION} to {MAX_FILE_FORMAT_VERSION} torch reads")
    return version
