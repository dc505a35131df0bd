"""One fsspec filesystem during one read: opening it (one-line errors name a missing protocol
package), and what was learned from it (infos, folder listings, fetched blocks), so that each is
asked of the network once."""

from __future__ import annotations

from typing import Any, NamedTuple

from ckptdiff.errors import CkptdiffError, MissingDependencyError
from ckptdiff.sources.remote_file import BlockStore, RemoteFile

_PIP_NAMES = {"gcsfs": "gcsfs", "adlfs": "adlfs", "s3fs": "s3fs", "aiohttp": "aiohttp"}


class MissingProtocolError(MissingDependencyError):
    """The fsspec implementation of a URL's protocol is not installed."""

    def __init__(self, protocol: str, package: str) -> None:
        extra = "remote" if package == "fsspec" else package
        CkptdiffError.__init__(self, f"{protocol}:// paths need {package}: pip install "
                               f"{'ckptdiff[remote]' if package == 'fsspec' else package}")
        self.package = package
        self.extra = extra


def filesystem(url: str) -> tuple[Any, str]:
    """``url``'s fsspec filesystem (fsspec imported now) and the path inside it."""
    protocol = url.split("://", 1)[0].split("::")[-1]
    try:
        from fsspec.core import url_to_fs
    except ImportError:
        raise MissingProtocolError(protocol, "fsspec") from None
    try:
        fs, path = url_to_fs(url)
    except ImportError as exc:
        missing = getattr(exc.__cause__, "name", None) or getattr(exc, "name", None)
        raise MissingProtocolError(protocol, _PIP_NAMES.get(missing or "", missing or
                                                            _package_of(protocol))) from None
    except ValueError as exc:
        raise CkptdiffError(f"{url}: fsspec cannot open {protocol}:// paths ({exc})") from None
    except Exception as exc:  # a filesystem's constructor can fail on bad options/credentials
        raise CkptdiffError(f"{url}: cannot open the {protocol}:// filesystem: "
                            f"{_reason(exc)}") from None
    return fs, str(path)


def _package_of(protocol: str) -> str:
    from fsspec.registry import known_implementations

    spec = known_implementations.get(protocol, {})
    return str(spec.get("class", protocol)).split(".", 1)[0]


class RemoteStat(NamedTuple):
    """What ``stat()`` of a remote file tells: its size."""

    st_size: int


class RemoteFS:
    """One filesystem and what was learned from it during one read: infos, listings, blocks."""

    def __init__(self, fs: Any) -> None:
        self.fs = fs
        self._infos: dict[str, dict[str, Any] | None] = {}
        self._listings: dict[str, list[str]] = {}
        self._stores: dict[str, BlockStore] = {}

    def url(self, path: str) -> str:
        """The URL of a filesystem path, as the user would write it."""
        return str(self.fs.unstrip_protocol(path))

    def info(self, path: str) -> dict[str, Any] | None:
        """The fsspec info of ``path`` (``None`` when it does not exist), asked once."""
        if path not in self._infos:
            parent = path.rsplit("/", 1)[0] if "/" in path else None
            if parent is not None and parent in self._listings:
                self._infos[path] = None  # a listed folder knows all of its entries
            else:
                self._infos[path] = self._ask_info(path)
        return self._infos[path]

    def _ask_info(self, path: str) -> dict[str, Any] | None:
        try:
            return dict(self.fs.info(path))
        except FileNotFoundError:
            return None
        except Exception as exc:  # permissions, network, bad credentials …
            raise CkptdiffError(f"{self.url(path)}: cannot access: {_reason(exc)}") from None

    def listing(self, path: str) -> list[str]:
        """The paths directly inside the folder ``path`` (their infos are kept)."""
        if path not in self._listings:
            try:
                entries = self.fs.ls(path, detail=True)
            except FileNotFoundError:
                entries = []
            except Exception as exc:
                raise CkptdiffError(f"{self.url(path)}: cannot list: {_reason(exc)}") from None
            names = []
            for entry in entries:
                name = str(entry["name"]).rstrip("/")
                if name and name != path:
                    self._infos[name] = dict(entry)
                    names.append(name)
            self._listings[path] = sorted(names)
        return self._listings[path]

    def _open_handle(self, path: str) -> Any:
        try:
            handle = self.fs.open(path, "rb", cache_type="none")
        except OSError:
            raise
        except Exception as exc:
            raise OSError(f"cannot open: {_reason(exc)}") from None
        if not handle.seekable():
            handle.close()
            raise OSError("the server does not allow ranged reads (no size or no Range "
                          "support), so the file cannot be read without downloading it")
        return handle

    def open(self, path: str) -> RemoteFile:
        """The file at ``path``, read through its (shared) block store."""
        store = self._stores.get(path)
        if store is None:
            info = self.info(path)
            if info is None or info.get("type") != "file":
                raise FileNotFoundError(2, "No such file", self.url(path))
            handle = self._open_handle(path)

            def fetch(start: int, end: int) -> bytes:
                handle.seek(start)
                return bytes(handle.read(end - start))

            from ckptdiff.sources import progress

            store = BlockStore(fetch, int(info.get("size") or 0), self.url(path),
                               progress.note_bytes)
            self._stores[path] = store
        return RemoteFile(store)


def _reason(exc: BaseException) -> str:
    text = (str(exc).strip().splitlines() or [""])[0][:200]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
