"""The reader protocol and the small I/O helpers every reader shares."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import IO, Any, ClassVar, Protocol, runtime_checkable

from ckptdiff.errors import CkptdiffError, CorruptFileError
from ckptdiff.manifest import Manifest

HEAD_BYTES = 4096


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

    def sniff(self, head: bytes, path: Path) -> bool:
        """True when this reader recognises the content at ``path``."""
        ...

    def read(self, path: Path, key: str | None = None) -> Manifest:
        """Parse the headers at ``path`` into a manifest; ``key`` picks a container entry."""
        ...


class CountingFile(io.RawIOBase):
    """A read-only binary file that counts the bytes actually read from it."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__()
        self.name = str(path)
        self._file: io.BufferedReader = open(path, "rb")  # noqa: SIM115 - closed in close()
        self.size = os.fstat(self._file.fileno()).st_size
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = self._file.readinto(buffer)
        self.bytes_read += count or 0
        return count or 0

    def read(self, size: int | None = -1) -> bytes:
        data = self._file.read(-1 if size is None else size)
        self.bytes_read += len(data)
        return data

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


def read_head(path: Path, count: int = HEAD_BYTES) -> bytes:
    """The first ``count`` bytes of a file (empty for directories and missing paths)."""
    if not path.is_file():
        return b""
    try:
        with open(path, "rb") as handle:
            return handle.read(count)
    except OSError as exc:
        raise CkptdiffError(f"{path}: cannot read: {exc.strerror or exc}") from None


def has_extension(path: Path, extensions: tuple[str, ...]) -> bool:
    """True when the file name ends with one of ``extensions`` (case-insensitive)."""
    name = path.name.lower()
    return any(name.endswith(ext) for ext in extensions)
