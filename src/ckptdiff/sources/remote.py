"""Remote checkpoints through fsspec: ``s3://``, ``gs://``, ``az://``, ``http(s)://`` and any
protocol whose fsspec package is installed.

:class:`RemotePath` answers the part of ``pathlib.Path`` that readers use (``name``, ``parent``,
``/``, ``is_file``, ``iterdir``, ``stat`` …), so readers treat a URL like a local path; files open
as :class:`~ckptdiff.sources.remote_file.RemoteFile`, read by 64 KiB ranges, so a 100 GB
checkpoint costs its headers. Credentials come from fsspec's usual configuration (environment,
config files). fsspec is imported only by :mod:`ckptdiff.sources.remote_fs`, and only for a path
that has a protocol.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterator
from pathlib import PurePath, PurePosixPath

from ckptdiff.sources.remote_file import RemoteFile
from ckptdiff.sources.remote_fs import RemoteFS, RemoteStat, filesystem

# A protocol of two or more characters (one letter is a Windows drive), optionally chained.
_URL = re.compile(r"^(?P<protocol>[A-Za-z][\w+.-]+)(?:::[A-Za-z][\w+.-]*)*://")


def has_protocol(text: str) -> bool:
    """True when ``text`` is a URL fsspec should open (``s3://…``), not a local path."""
    return _URL.match(text) is not None and not text.startswith("file://")


class RemotePath:
    """A path on a remote filesystem, with the ``pathlib.Path`` methods readers use."""

    __slots__ = ("remote", "path")

    def __init__(self, remote: RemoteFS, path: str) -> None:
        self.remote = remote
        self.path = path.rstrip("/") or path

    @classmethod
    def from_url(cls, url: str) -> RemotePath:
        """Open ``url``'s filesystem (fsspec imported now) and point at ``url``."""
        fs, path = filesystem(url)
        return cls(RemoteFS(fs), str(path))

    def __str__(self) -> str:
        return self.remote.url(self.path)

    def __repr__(self) -> str:
        return f"RemotePath({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, RemotePath) and other.remote is self.remote
                and other.path == self.path)

    def __hash__(self) -> int:
        return hash(self.path)

    def __lt__(self, other: RemotePath) -> bool:
        return self.path < other.path

    @property
    def name(self) -> str:
        """The last component of the path."""
        return self.path.rsplit("/", 1)[-1]

    @property
    def suffix(self) -> str:
        """The file extension of the last component (``.safetensors``), or ``""``."""
        return PurePosixPath(self.name).suffix

    @property
    def parent(self) -> RemotePath:
        """The folder holding this path (the bucket root is its own parent)."""
        head = self.path.rsplit("/", 1)[0] if "/" in self.path.strip("/") else self.path
        return RemotePath(self.remote, head)

    @property
    def parents(self) -> tuple[RemotePath, ...]:
        """Every enclosing folder, nearest first."""
        found: list[RemotePath] = []
        current = self
        while current.parent.path != current.path:
            current = current.parent
            found.append(current)
        return tuple(found)

    def __truediv__(self, name: str | PurePath) -> RemotePath:
        return self.joinpath(name)

    def joinpath(self, *parts: str | PurePath) -> RemotePath:
        """This path with ``parts`` appended, ``/``-separated."""
        tail = "/".join(str(p).replace("\\", "/").strip("/") for p in parts)
        return RemotePath(self.remote, f"{self.path}/{tail}" if tail else self.path)

    def with_name(self, name: str) -> RemotePath:
        """The sibling called ``name``."""
        return self.parent / name

    def is_absolute(self) -> bool:
        """Always true: a URL names one place."""
        return True

    def resolve(self, strict: bool = False) -> RemotePath:
        """Itself: object stores have no symlinks."""
        return self

    def is_relative_to(self, other: object) -> bool:
        """True when ``other`` is this path or one of its folders (same filesystem)."""
        return isinstance(other, RemotePath) and other.remote is self.remote and (
            self.path == other.path or self.path.startswith(other.path.rstrip("/") + "/"))

    def relative_to(self, other: RemotePath) -> PurePosixPath:
        """This path relative to its folder ``other``."""
        if not self.is_relative_to(other):
            raise ValueError(f"{self} is not inside {other}")
        return PurePosixPath(self.path[len(other.path):].lstrip("/") or ".")

    def exists(self) -> bool:
        """True when a file or folder is there."""
        return self.remote.info(self.path) is not None

    def is_file(self) -> bool:
        """True for a file."""
        info = self.remote.info(self.path)
        return info is not None and info.get("type") == "file"

    def is_dir(self) -> bool:
        """True for a folder (an object-store prefix)."""
        info = self.remote.info(self.path)
        return info is not None and info.get("type") == "directory"

    def is_symlink(self) -> bool:
        """Always false: remote filesystems have no symlinks ckptdiff follows."""
        return False

    def iterdir(self) -> Iterator[RemotePath]:
        """The entries of this folder, sorted."""
        return iter([RemotePath(self.remote, p) for p in self.remote.listing(self.path)])

    def glob(self, pattern: str) -> Iterator[RemotePath]:
        """Entries of this folder whose name matches ``pattern`` (one level only)."""
        return iter([p for p in self.iterdir() if fnmatch.fnmatchcase(p.name, pattern)])

    def stat(self) -> RemoteStat:
        """The size of the file (``FileNotFoundError`` when there is none)."""
        info = self.remote.info(self.path)
        if info is None:
            raise FileNotFoundError(2, "No such file", str(self))
        return RemoteStat(int(info.get("size") or 0))

    def open_binary(self) -> RemoteFile:
        """The file, opened for ranged reads through its shared block store."""
        return self.remote.open(self.path)

    def read_bytes(self) -> bytes:
        """The whole file (for small files: manifests, indexes)."""
        with self.open_binary() as handle:
            return handle.read()
