"""The ``numpy-npz`` reader: a ``.npz`` archive (``numpy.savez``, ``savez_compressed``) by the
headers of its ``.npy`` members.

Keys are member names without ``.npy``, as ``np.load(path).files`` lists them; members that are
not arrays (no ``.npy`` magic: ``np.load`` hands them out as bytes) are listed in
``metadata["numpy"]["other_members"]``. The archive's central directory and every member's local
header go through the shared zip checks (:mod:`~ckptdiff.readers.zip_safety`); of each member only
its first bytes are read — for a deflated one, inflated up to the end of its header — so the
CRC of the data, which ``np.load`` checks when it reads an array, is not.
"""

from __future__ import annotations

import zipfile
import zlib
from typing import IO, Any, ClassVar, cast

from ckptdiff.errors import CkptdiffError, CorruptFileError
from ckptdiff.manifest import Manifest, TensorInfo
from ckptdiff.readers.base import CountingFile, Location, read_exact
from ckptdiff.readers.numpy.header import MAGIC, PREFIX_BYTES, header_length, parse_header
from ckptdiff.readers.numpy.npy import array_facts, array_info, refuse_key
from ckptdiff.readers.safety import shown
from ckptdiff.readers.zip_safety import (
    LOCAL_HEADER,
    check_expansion,
    check_zip_directory,
    local_header_problem,
)

_ZIP_MAGIC = b"PK\x03\x04"
_CHUNK = 16 * 1024


class NpzReader:
    """A ``.npz`` archive (any extension) whose first member is a ``.npy``."""

    name: ClassVar[str] = "numpy-npz"
    extensions: ClassVar[tuple[str, ...]] = (".npz",)
    description: ClassVar[str] = "NumPy .npz archive of arrays (headers only)"
    requires: ClassVar[tuple[str, ...]] = ()
    extra: ClassVar[str | None] = None

    def sniff(self, head: bytes, path: Location) -> bool:
        """A zip whose first local header names a ``*.npy`` member (numpy writes only those)."""
        if not head.startswith(_ZIP_MAGIC) or len(head) < LOCAL_HEADER.size:
            return False
        length = int.from_bytes(head[26:28], "little")
        first = head[LOCAL_HEADER.size:LOCAL_HEADER.size + length]
        return len(first) == length and first.endswith(b".npy")

    def read(self, path: Location, key: str | None = None) -> Manifest:
        """The header of every member; no array data is read."""
        refuse_key(path, key)
        label = str(path)
        try:
            with CountingFile(path) as file:
                tensors, arrays, others = self._members(cast(IO[bytes], file), file.size, label)
                bytes_read = file.bytes_read
        except OSError as exc:
            raise CkptdiffError(f"{label}: cannot read: {exc.strerror or exc}") from None
        numpy_facts: dict[str, Any] = {"arrays": arrays}
        if others:
            numpy_facts["other_members"] = others
        return Manifest(path=label, format=self.name, tensors=tuple(tensors),
                        metadata={"numpy": numpy_facts, "bytes_read": bytes_read})

    def _members(self, file: IO[bytes], size: int, label: str
                 ) -> tuple[list[TensorInfo], dict[str, Any], list[str]]:
        try:
            archive = zipfile.ZipFile(file)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
            raise CorruptFileError(f"{label}: not a readable zip archive ({exc}): truncated "
                                   "download?") from None
        except NotImplementedError as exc:  # zipfile, and so np.load, cannot read it either
            raise CorruptFileError(f"{label}: the zip archive needs {exc}, which Python's "
                                   "zipfile (and np.load) cannot read") from None
        tensors: list[TensorInfo] = []
        arrays: dict[str, Any] = {}
        others: list[str] = []
        with archive:
            check_zip_directory(archive, size, label)
            for info in archive.infolist():
                name = info.orig_filename
                prefix = _member_prefix(file, info, label)
                if not prefix.startswith(MAGIC):
                    others.append(name)
                    continue
                where = f"{label}: member {shown(name)!r}"
                header = parse_header(prefix, where)
                if header.data_offset + header.nbytes > info.file_size:
                    raise CorruptFileError(
                        f"{where}: the array needs {header.nbytes:,} bytes of data after its "
                        f"header but the member holds {info.file_size - header.data_offset:,}")
                key = name[:-4] if name.endswith(".npy") else name
                if key in arrays:
                    raise CorruptFileError(f"{label}: members {shown(name)!r} and another both "
                                           f"load as {shown(key)!r}: ambiguous archive")
                arrays[key] = array_facts(header)
                tensors.append(array_info(key, header, name))
        return tensors, arrays, others


def _member_prefix(file: IO[bytes], info: zipfile.ZipInfo, label: str) -> bytes:
    """The first bytes of a member, up to the end of an array header (bounded)."""
    name = shown(info.orig_filename)
    check_expansion(info, label)
    if info.flag_bits & 0x01:
        raise CorruptFileError(f"{label}: refused {name}: the zip entry is encrypted")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise CorruptFileError(f"{label}: {name} uses zip compression method "
                               f"{info.compress_type}; numpy.savez writes stored or deflated")
    file.seek(info.header_offset)
    local = read_exact(file, LOCAL_HEADER.size, f"the zip header of {name}", label)
    name_length, extra_length = LOCAL_HEADER.unpack(local)[-2:]
    local_name = read_exact(file, name_length, f"the zip header of {name}", label)
    problem = local_header_problem(info, local, local_name)
    if problem:
        raise CorruptFileError(f"{label}: refused {name}: its local zip header {problem} the "
                               "central directory")
    read_exact(file, extra_length, f"the zip header of {name}", label)
    if info.compress_type == zipfile.ZIP_DEFLATED:
        return _inflated_prefix(file, info, min(info.file_size, PREFIX_BYTES), label)
    start = read_exact(file, min(12, info.compress_size), f"the start of {name}", label)
    if not start.startswith(MAGIC) or len(start) < 10:
        return start
    _, begin, length = header_length(start, f"{label}: member {name!r}")
    wanted = min(begin + length, PREFIX_BYTES, info.compress_size) - len(start)
    return start + read_exact(file, max(wanted, 0), f"the array header of {name}", label)


def _inflated_prefix(file: IO[bytes], info: zipfile.ZipInfo, wanted: int, label: str) -> bytes:
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    out = bytearray()
    left = info.compress_size
    try:
        while len(out) < wanted and not inflater.eof:
            data = inflater.unconsumed_tail
            if not data:
                if left == 0:
                    break
                data = read_exact(file, min(_CHUNK, left), f"zip entry {shown(info.filename)}",
                                  label)
                left -= len(data)
            out += inflater.decompress(data, wanted - len(out))
    except zlib.error as exc:
        raise CorruptFileError(f"{label}: {shown(info.filename)} holds damaged compressed data "
                               f"({exc})") from None
    return bytes(out)
