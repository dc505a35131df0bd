"""The reader protocol and the small I/O helpers every reader shares."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import IO, Any, ClassVar, Protocol, TypeAlias, cast, runtime_checkable

from ckptdiff.errors import CkptdiffError, CorruptFileError
from ckptdiff.manifest import Manifest
from ckptdiff.sources import progress
from ckptdiff.sources.remote import RemotePath
from ckptdiff.sources.remote_file import RemoteFile

HEAD_BYTES = 4096

# Where a checkpoint is: a local path, or a URL (s3://…) that answers the same methods.
Location: TypeAlias = Path | RemotePath


@runtime_checkable
class Reader(Protocol):
    """What every checkpoint reader provides (built-in or registered as a plugin).

    ``sniff`` decides by content (``head`` is the first bytes of a file, empty for a directory or
    a path that does not exist, such as a TensorFlow checkpoint prefix); ``read`` parses headers
    only and returns a :class:`Manifest` whose ``metadata["bytes_read"]`` says how much was read.
    """

    name: ClassVar[str]
    extensions: ClassVar[tuple[str, ...]]
    description: ClassVar[str]
    requires: ClassVar[tuple[str, ...]]
    extra: ClassVar[str | None]

    def sniff(self, head: bytes, path: Location) -> bool:
        """True when this reader recognises the content at ``path``."""
        ...

    def read(self, path: Location, key: str | None = None) -> Manifest:
        """Parse the headers at ``path`` into a manifest; ``key`` picks a container entry."""
        ...


class CountingFile(io.RawIOBase):
    """A read-only binary file that counts the bytes actually read from it.

    For a remote file, ``bytes_read`` is what came over the network for that file (whole
    64 KiB blocks, including what sniffing fetched), the real cost of the read.
    """

    def __init__(self, path: str | os.PathLike[str] | RemotePath) -> None:
        super().__init__()
        self.name = str(path)
        progress.note_file(self.name.rsplit("/", 1)[-1])
        self._file: io.BufferedReader | RemoteFile
        self._remote: RemoteFile | None = None
        if isinstance(path, RemotePath):
            self._remote = path.open_binary()
            self._file = self._remote
            self.size = self._remote.size
        else:
            self._file = open(path, "rb")  # noqa: SIM115 - closed in close()
            self.size = os.fstat(self._file.fileno()).st_size
        self._consumed = 0

    @property
    def bytes_read(self) -> int:
        """Bytes read from the file so far (for a remote file: fetched over the network)."""
        return self._remote.fetched if self._remote is not None else self._consumed

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = self._file.readinto(buffer)
        self._consumed += count or 0
        return count or 0

    def read(self, size: int | None = -1) -> bytes:
        data = self._file.read(-1 if size is None else size)
        self._consumed += len(data or b"")
        return data or b""

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def close(self) -> None:
        if not self.closed:
            self._file.close()
        super().close()


def read_exact(file: IO[bytes], count: int, what: str, path: str) -> bytes:
    """Read exactly ``count`` bytes or raise a one-line truncation error naming ``what``."""
    start = file.tell()
    data = file.read(count)
    if len(data) != count:
        raise CorruptFileError(
            f"{path}: file ends at byte {start + len(data):,} while reading {what} "
            f"({count:,} bytes from byte {start:,}): truncated download?"
        )
    return data


def read_head(path: Location, count: int = HEAD_BYTES) -> bytes:
    """The first ``count`` bytes of a file (empty for directories and missing paths)."""
    if not path.is_file():
        return b""
    try:
        with open_binary(path) as handle:
            return handle.read(count)
    except OSError as exc:
        raise CkptdiffError(f"{path}: cannot read: {exc.strerror or exc}") from None


def open_counting(path: Location) -> CountingFile:
    """``path`` opened as a :class:`CountingFile`; a file that cannot be opened is a one-line
    ``CkptdiffError``."""
    try:
        return CountingFile(path)
    except OSError as exc:
        raise CkptdiffError(f"{path}: cannot read: {exc.strerror or exc}") from None


def open_binary(path: Location) -> IO[bytes]:
    """``path`` opened for reading bytes, local or remote (without counting)."""
    if isinstance(path, RemotePath):
        return cast(IO[bytes], path.open_binary())
    return open(path, "rb")  # noqa: SIM115 - the caller closes it


def is_within(target: Location, folder: Location) -> bool:
    """True when ``target`` is ``folder`` or inside it (both resolved by the caller)."""
    if isinstance(target, RemotePath) or isinstance(folder, RemotePath):
        return isinstance(target, RemotePath) and target.is_relative_to(folder)
    return target.is_relative_to(folder)


def has_extension(path: Location, extensions: tuple[str, ...]) -> bool:
    """True when the file name ends with one of ``extensions`` (case-insensitive)."""
    name = path.name.lower()
    return any(name.endswith(ext) for ext in extensions)
