"""Reads a list of checkpoints under a ``sys.addaudithook`` hook and reports what it saw.

Run as ``python -m tests.hostile.audit_child INPUT.json OUTPUT.json``. INPUT holds
``{"warmup": [paths], "files": [paths]}``. The warm-up paths (valid checkpoints of every format)
(and a file of no known format) are read first, so that modules ckptdiff imports lazily are
loaded; then the hook is installed
and every file is read (``ckptdiff.readers.read``) and scanned (``unsafe_report``). OUTPUT holds
each file's outcome and every *suspicious* audit event, from this process or the children the
HDF5 sandbox forks (they write to one log): a process, exec or compile of code,
a socket, a ``pickle.find_class`` (a real unpickler resolving a global), an import of a module
not already loaded (or of a compression module zipfile loads lazily), a write to any file, or a
read outside the corpus folder and Python's own installation.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any

WATCHED = ("os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.forkpty",
           "os.remove", "os.rename", "os.rmdir", "os.truncate", "os.chmod",
           "os.symlink", "os.link", "os.mkdir", "os.putenv", "subprocess.", "pty.", "socket.",
           "ctypes.", "webbrowser.", "urllib.", "http.", "shutil.", "builtins.input",
           "pickle.find_class", "marshal.", "cpython.run_", "code.", "sys.settrace",
           "sys.setprofile", "compile", "exec")
LAZY_MODULES = ("zlib", "bz2", "_bz2", "lzma", "_lzma", "_compression", "encodings")
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def _describe(event: str, args: tuple[Any, ...]) -> str | None:
    """A one-line description of a suspicious event, or None for a harmless one."""
    if event == "import":
        module = str(args[0])
        if module in sys.modules or module.split(".")[0] in LAZY_MODULES:
            return None
        return f"import {module}"
    if event == "open":
        path, mode, flags = (list(args) + [None, None, None])[:3]
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and flags & _WRITE_FLAGS)
        name = os.fsdecode(path) if isinstance(path, (str, bytes, os.PathLike)) else ""
        # /proc/self/statm: the HDF5 sandbox sizes its child's memory limit from it.
        inside = name.startswith((ROOTS[0], sys.prefix, sys.base_prefix, "/proc/self/")) or not name
        if writing or not inside:
            return f"open {name!r} mode={mode!r} flags={flags!r}"
        return None
    if event in ("exec", "compile"):
        # Importing a module execs (and may compile) its file: a lazy import shows as "import".
        code = args[0] if event == "exec" else None
        name = getattr(code, "co_filename", "") if code is not None else str(args[1])
        if str(name).startswith((sys.prefix, sys.base_prefix, ROOTS[1])):
            return None
        return f"{event} {name!r}"
    if event == "os.fork":
        return FORK  # ckptdiff forks for HDF5 (native_sandbox): counted, compared to its calls
    if event == "os.kill":
        return KILL  # the sandbox kills a child that ran out of time: compared to its timeouts
    if event.startswith(WATCHED):
        return event
    return None


FORK, KILL = "FORK", "KILL"


def record(description: str | None, forks: list[int], events: list[str]) -> None:
    """File one described event: the sandbox-like ones (fork, kill) as counts in ``forks``
    (``[forks, kills]``), any other into ``events``."""
    if description == FORK:
        forks[0] += 1
    elif description == KILL:
        forks[1] += 1
    elif description is not None:
        events.append(description)


def unexplained(events: list[str], forks: list[int], sandbox: list[int]) -> int:
    """What counts as code run by a file: every other event, and each fork or kill beyond the
    native sandbox's own runs and timeouts (``sandbox`` from :func:`_count_sandbox_runs`)."""
    return len(events) + abs(forks[0] - sandbox[0]) + abs(forks[1] - sandbox[1])
ROOTS: list[str] = ["", str(Path(__file__).resolve().parents[2] / "src")]


def main(source: Path, target: Path) -> None:
    """Read everything listed in ``source``; write outcomes and suspicious events to ``target``."""
    from ckptdiff.errors import CkptdiffError, UnsafeContentError
    from ckptdiff.readers import read
    from ckptdiff.readers.pickle.unsafe_report import unsafe_report

    job = json.loads(source.read_text())
    ROOTS[0] = job["root"]
    for path in job["warmup"]:
        with contextlib.suppress(CkptdiffError):  # an unknown format loads the plugin registry
            read(path)
        unsafe_report(path)
    log = [os.open(target.with_suffix(".events"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)]
    sandboxed = _count_sandbox_runs()

    def hook(event: str, args: tuple[Any, ...]) -> None:
        description = _describe(event, args) if log else None
        if description is not None:  # os.write: also from forked children, not audited
            line = f"{os.getpid()} {description}\n"
            os.write(log[0], line.encode("utf-8", "backslashreplace"))

    sys.addaudithook(hook)
    outcomes: list[dict[str, Any]] = []
    for path in job["files"]:
        result: dict[str, Any] = {"path": path}
        try:
            result["outcome"] = f"manifest:{len(read(path))}"
        except UnsafeContentError as exc:
            result["outcome"], result["globals"] = "unsafe", list(exc.globals)
        except CkptdiffError as exc:
            result["outcome"] = type(exc).__name__
        except Exception as exc:  # reported, and failed by the parent
            result["outcome"] = f"crash:{type(exc).__name__}: {exc}"
        try:
            result["report"] = unsafe_report(path).unsafe_globals
        except CkptdiffError as exc:
            result["report"] = f"error: {type(exc).__name__}"
        except Exception as exc:
            result["report"] = f"crash:{type(exc).__name__}: {exc}"
        outcomes.append(result)
    os.close(log.pop())  # the hook stays installed but logs no more
    lines = target.with_suffix(".events").read_text().splitlines()
    events = [line.split(" ", 1)[1] for line in lines]
    target.write_text(json.dumps({"events": [e for e in events if e not in (FORK, KILL)],
                                  "forks": events.count(FORK), "kills": events.count(KILL),
                                  "sandbox_runs": sandboxed[0], "timeouts": sandboxed[1],
                                  "outcomes": outcomes}))


def _count_sandbox_runs() -> list[int]:
    """Count the native sandbox's runs (each forks once) and its timeouts (each kills once), to
    tell its forks and kills from a payload's: ``[runs, timeouts]``."""
    from ckptdiff.errors import CorruptFileError
    from ckptdiff.readers import native_sandbox
    from ckptdiff.readers.keras import h5 as keras_h5

    count = [0, 0]
    real = native_sandbox.run_isolated

    def counted(*args: Any, **kwargs: Any) -> str:
        count[0] += 1
        try:
            return real(*args, **kwargs)
        except CorruptFileError as exc:
            count[1] += "did not finish" in str(exc)
            raise

    native_sandbox.run_isolated = counted
    keras_h5.run_isolated = counted
    return count


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
