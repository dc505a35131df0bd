"""Runs a native parser (the HDF5 library, through h5py) in a forked child with a time limit.

Every length and count ckptdiff parses itself is checked before use, and its work is bounded by
operation counts. The HDF5 C library is the exception: on some damaged files it loops forever
(found by ckptdiff's mutation fuzzer: a shifted global heap makes reading a string attribute spin
without returning or releasing the GIL) or crashes, and no Python code can interrupt it. So the
Keras readers parse HDF5 in a forked child process: the parent waits at most
:data:`NATIVE_SECONDS` (``CKPTDIFF_NATIVE_TIMEOUT`` overrides it), kills a child that takes
longer, and turns a timeout or a crash into a one-line :class:`~ckptdiff.errors.CorruptFileError`.
The child's address space may grow by at most :data:`NATIVE_MEMORY_MB` (``RLIMIT_AS``,
``CKPTDIFF_NATIVE_MEMORY_MB`` overrides it): a damaged size can make HDF5 allocate gigabytes
before it notices. The child sends back text (a manifest's JSON) or the error it raised.

Forking is cheap (no re-import) but not everywhere safe: without ``os.fork`` (Windows) and for
remote files (fsspec runs an event loop in a thread, which a fork does not copy) the parse runs
in this process, without the time limit.
"""

from __future__ import annotations

import contextlib
import faulthandler
import importlib
import json
import os
import resource
import select
import signal
import time
from collections.abc import Callable
from pathlib import Path

from ckptdiff import errors
from ckptdiff.errors import CkptdiffError, CorruptFileError
from ckptdiff.manifest import Manifest
from ckptdiff.readers.base import Location
from ckptdiff.sources import progress

NATIVE_SECONDS = 60.0
# Address space the child may add to what it inherits: a damaged file can make HDF5 allocate
# what a corrupt size says (seen: 3.5 GB) before it notices; real headers need a few MB.
NATIVE_MEMORY_MB = 256
_CHUNK = 1 << 16


def memory_limit_mb() -> int:
    """MiB of address space a native parse may add (``CKPTDIFF_NATIVE_MEMORY_MB`` overrides)."""
    try:
        return int(os.environ.get("CKPTDIFF_NATIVE_MEMORY_MB", NATIVE_MEMORY_MB))
    except ValueError:
        return NATIVE_MEMORY_MB


def time_limit() -> float:
    """Seconds a native parse may take (``CKPTDIFF_NATIVE_TIMEOUT`` overrides the default)."""
    try:
        return float(os.environ.get("CKPTDIFF_NATIVE_TIMEOUT", NATIVE_SECONDS))
    except ValueError:
        return NATIVE_SECONDS


def isolated_manifest(task: Callable[[], Manifest], path: Location, what: str) -> Manifest:
    """The manifest ``task`` builds from the file at ``path``, built in a forked child."""
    text = run_isolated(lambda: task().to_json(), str(path), what, isinstance(path, Path))
    return Manifest.from_json(text)


def run_isolated(task: Callable[[], str], display: str, what: str, local: bool) -> str:
    """``task()``'s text, computed in a forked child when ``local`` and fork is available.

    A :class:`CkptdiffError` raised by ``task`` is raised again here; a child that runs out of
    time, dies from a signal or fails otherwise becomes a ``CorruptFileError`` naming ``what``.
    """
    if not local or not hasattr(os, "fork"):
        return task()
    _preload()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        os.close(read_end)
        _child(task, write_end, display, what)
    os.close(write_end)
    try:
        data = _collect(read_end, pid, display, what)
    finally:
        os.close(read_end)
    return _answer(data, display, what)


def _preload() -> None:
    # Imported once here, a child inherits h5py instead of importing it again (~0.2 s each).
    with contextlib.suppress(ImportError):  # without h5py, the task raises the install hint
        importlib.import_module("h5py")


def _limit_memory() -> None:
    # Linux: the address space mapped now (/proc/self/statm, in pages) plus the budget.
    try:
        with open("/proc/self/statm") as statm:
            mapped = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = mapped + memory_limit_mb() * 1024 * 1024
        if hard == resource.RLIM_INFINITY or limit < hard:
            resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (OSError, ValueError):  # no /proc (macOS): no memory limit
        pass


def _child(task: Callable[[], str], write_end: int, display: str, what: str) -> None:
    code = 0
    try:
        progress._active = None  # noqa: SLF001 - the parent shows any progress, not the child
        faulthandler.disable()  # a crash is reported by the parent, in one line
        _limit_memory()
        payload: dict[str, object]
        try:
            payload = {"text": task()}
        except MemoryError:
            payload = {"error": "CorruptFileError", "attributes": {}, "message": (
                f"{display}: reading {what} needs more than {memory_limit_mb()} MiB of memory "
                "in the HDF5 library (a damaged size?): corrupt file?")}
        except CkptdiffError as exc:
            payload = {"error": type(exc).__name__, "message": str(exc),
                       "attributes": {k: v for k, v in vars(exc).items()
                                      if isinstance(v, (str, int, tuple, list))}}
        except Exception as exc:  # a bug, not the file's fault: the parent raises it as one
            payload = {"bug": f"{type(exc).__name__}: {exc}"}
        data = json.dumps(payload).encode("utf-8")
        for start in range(0, len(data), _CHUNK):
            os.write(write_end, data[start:start + _CHUNK])
    except BaseException:  # a bug in the child: the parent reports it
        code = 70
    finally:
        os._exit(code)


def _collect(read_end: int, pid: int, display: str, what: str) -> bytes:
    chunks: list[bytes] = []
    deadline = time.monotonic() + time_limit()
    while True:
        remaining = deadline - time.monotonic()
        ready = select.select([read_end], [], [], max(remaining, 0))[0] if remaining > 0 else []
        if not ready:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise CorruptFileError(
                f"{display}: the HDF5 library did not finish reading {what} within "
                f"{time_limit():g} s (a damaged file can make it loop): corrupt file?")
        chunk = os.read(read_end, _CHUNK)
        if not chunk:
            break
        chunks.append(chunk)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        raise CorruptFileError(f"{display}: the HDF5 library crashed reading {what} (signal "
                               f"{os.WTERMSIG(status)}): corrupt file?")
    if os.WEXITSTATUS(status) != 0 or not chunks:
        raise CorruptFileError(f"{display}: reading {what} failed in ckptdiff's HDF5 worker "
                               f"(exit status {os.WEXITSTATUS(status)})")
    return b"".join(chunks)


def _answer(data: bytes, display: str, what: str) -> str:
    payload = json.loads(data)
    if "text" in payload:
        text: str = payload["text"]
        return text
    if "bug" in payload:
        raise RuntimeError(f"in ckptdiff's HDF5 worker reading {what}: {payload['bug']}")
    cls = _error_class(payload["error"])
    error = cls.__new__(cls)
    Exception.__init__(error, payload["message"])
    for name, value in payload["attributes"].items():
        setattr(error, name, tuple(value) if isinstance(value, list) else value)
    raise error


def _error_class(name: str) -> type[CkptdiffError]:
    # the Keras readers' own error classes
    from ckptdiff.readers.keras import hdf5 as keras_hdf5

    for module in (errors, keras_hdf5):
        found = getattr(module, name, None)
        if isinstance(found, type) and issubclass(found, CkptdiffError):
            return found
    return CorruptFileError
