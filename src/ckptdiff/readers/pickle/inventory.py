"""Every pickle a checkpoint holds, and every global each one names: a scanner's view.

This is what ``ckptdiff inspect --unsafe-report`` shows. Nothing is unpickled: each pickle's
opcodes are scanned (:func:`~ckptdiff.readers.pickle.scan.scan_globals`) and each global is
classified against the restricted unpickler's allow-list. Where pickles are:

- a zip archive (torch zip, TorchScript, a ``.distcp`` rank file): every ``*.pkl`` member;
- a ``torch.distributed.checkpoint`` directory, or its ``.metadata``: that file;
- a tar archive (torch's pre-1.0 tar format): every member that starts like a pickle;
- any other file that starts with a pickle (legacy ``torch.save``, ``pickle.dump``): the pickles
  in a row at its start.

Damaged input does not stop the scan: a member that cannot be read or scanned keeps what was
found before the problem, and says what the problem was.
"""

from __future__ import annotations

import tarfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, cast

from ckptdiff.errors import CkptdiffError
from ckptdiff.readers.base import CountingFile, Location, read_head
from ckptdiff.readers.pickle.allowlist import ALLOWED_GLOBALS, UNSUPPORTED_GLOBALS
from ckptdiff.readers.pickle.allowlist import WEIGHTS_ONLY_REFUSES as AS_DATA
from ckptdiff.readers.pickle.dcp_records import DCP_GLOBALS
from ckptdiff.readers.pickle.scan import INCOMPLETE, GlobalsScan, scan_globals
from ckptdiff.readers.pickle.script_records import script_globals
from ckptdiff.readers.safety import MAX_PICKLE_BYTES, shown
from ckptdiff.readers.zip_safety import (
    check_directory_position,
    check_zip_directory,
    read_member,
)

# What a global is to ckptdiff (and, for "allowed" and "data", to torch.load(weights_only=True)).
ALLOWED, AS_PLAIN_DATA, UNSUPPORTED, UNSAFE = "allowed", "data", "unsupported", "unsafe"
_ORDER = (UNSAFE, UNSUPPORTED, AS_PLAIN_DATA, ALLOWED)  # how a pickle's globals are listed
MAX_STREAM_PICKLES = 64  # pickles read in a row from one stream (legacy torch writes 5)
_DCP_METADATA = ".metadata"
MAX_TAR_MEMBERS = 100_000
UNSCANNED = "not scanned: "  # starts the notes that mean part of the checkpoint was not scanned


@dataclass(frozen=True)
class GlobalUse:
    """One global a pickle names: its dotted name, how often, and its status."""

    name: str
    count: int
    status: str


@dataclass(frozen=True)
class PickleFindings:
    """One pickle: where it is, its size and opcode count, its globals, and any problem."""

    member: str
    size: int
    opcodes: int
    globals: tuple[GlobalUse, ...]
    error: str | None


def status_of(module: str, name: str, dcp: bool = False, script: bool = False) -> str:
    """What ckptdiff does with the global ``module.name`` (see the module's constants);
    ``script``: in a TorchScript archive, whose ``__torch__.*`` classes are read as data."""
    if (module, name) in UNSUPPORTED_GLOBALS:
        return UNSUPPORTED
    if script and (module, name) in script_globals([(module, name)]):
        return AS_PLAIN_DATA
    if (module, name) in ALLOWED_GLOBALS or (dcp and (module, name) in DCP_GLOBALS):
        return AS_PLAIN_DATA if f"{module}.{name}" in AS_DATA else ALLOWED
    return UNSAFE


def findings(member: str, data: bytes, scan: GlobalsScan, start: int, dcp: bool,
             error: str | None = None, script: bool = False) -> PickleFindings:
    """The findings of one scanned pickle."""
    uses = sorted((GlobalUse(f"{module}.{name}", count, status_of(module, name, dcp, script))
                   for (module, name), count in scan.globals.items()),
                  key=lambda use: (_ORDER.index(use.status), use.name))
    return PickleFindings(member, scan.end - start, scan.opcodes, tuple(uses),
                          error or scan.error)


def inventory(path: Location) -> tuple[str, list[PickleFindings], list[str]]:
    """The container kind, the pickles found in ``path`` and notes about the container."""
    notes: list[str] = []
    if path.is_dir():
        metadata = path / _DCP_METADATA
        if not metadata.is_file():
            return "directory", [], notes
        return "torch-dcp", [_whole_file(metadata, _DCP_METADATA, dcp=True)], notes
    head = read_head(path)
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "zip", _zip_pickles(path, notes), notes
    if path.name == _DCP_METADATA:
        return "torch-dcp", [_whole_file(path, _DCP_METADATA, dcp=True)], notes
    if _is_tar(path):
        return "tar", _tar_pickles(path, notes), notes
    if looks_like_pickle(head):
        with CountingFile(path) as file:
            return "pickle", _stream(_Growing(file.read), "", notes), notes
    return "other", [], notes


def looks_like_pickle(head: bytes) -> bool:
    """True when the first bytes of a file scan as the start of a pickle."""
    scan = scan_globals(head)
    return scan.opcodes > 1 and scan.error in (None, INCOMPLETE)


def _read_all(path: Location) -> bytes:
    with CountingFile(path) as file:
        return file.read(MAX_PICKLE_BYTES)


def _whole_file(path: Location, member: str, dcp: bool) -> PickleFindings:
    data = _read_all(path)
    return findings(member, data, scan_globals(data), 0, dcp)


class _Growing:
    """The start of a stream, read on demand in doubling chunks (never past MAX_PICKLE_BYTES):
    a legacy checkpoint's pickles are scanned without reading its gigabytes of storages."""

    def __init__(self, read: Callable[[int], bytes], first: bytes = b"") -> None:
        self._read = read
        self.data = first
        self._ended = False

    def more(self) -> bool:
        """Read more; False at the end of the stream or of what may be read."""
        if self._ended or len(self.data) >= MAX_PICKLE_BYTES:
            return False
        chunk = self._read(min(max(len(self.data), 1 << 16), MAX_PICKLE_BYTES - len(self.data)))
        self._ended = not chunk
        self.data += chunk
        return bool(chunk)


def _stream(source: _Growing, prefix: str, notes: list[str]) -> list[PickleFindings]:
    """The pickles in a row at the start of ``source`` (legacy torch: five, then raw bytes)."""
    found: list[PickleFindings] = []
    start = 0
    while len(found) < MAX_STREAM_PICKLES:
        if start >= len(source.data) and not source.more():
            break
        scan = scan_globals(source.data, start)
        if scan.error == INCOMPLETE and source.more():
            continue  # scanned again with more bytes
        if found and scan.error is not None and not scan.globals:
            break  # raw bytes after the last pickle (legacy torch storages), not a pickle
        found.append(findings(f"{prefix}pickle {len(found) + 1}", source.data, scan, start,
                              False))
        if scan.error is not None:
            break
        start = scan.end
    if len(found) == MAX_STREAM_PICKLES:
        notes.append(f"{UNSCANNED}what follows the first {MAX_STREAM_PICKLES} pickles in a row")
    return found


def _zip_pickles(path: Location, notes: list[str]) -> list[PickleFindings]:
    found: list[PickleFindings] = []
    with CountingFile(path) as file:
        try:
            archive = zipfile.ZipFile(file)
        except Exception as exc:  # a damaged archive: nothing can be located in it
            notes.append(f"{UNSCANNED}the zip central directory cannot be read "
                         f"({shown(str(exc))})")
            return found
        checks: tuple[Callable[[], None], ...] = (
            lambda: check_zip_directory(archive, file.size, str(path)),
            lambda: check_directory_position(cast(IO[bytes], file), str(path)))
        for check in checks:
            try:
                check()
            except CkptdiffError as exc:
                notes.append(str(exc).removeprefix(f"{path}: "))
        names = archive.namelist()
        script = any("/code/" in f"/{n}" for n in names)
        if script:
            notes.append("a TorchScript archive: torch.load would run its code/ through "
                         "torch.jit.load; ckptdiff reads its pickles with the __torch__.* "
                         "classes as inert data and never runs code/")
        for info in archive.infolist():
            if info.orig_filename.endswith(".pkl"):
                found.append(_member(file, info, str(path), script))
    return found


def _member(file: CountingFile, info: zipfile.ZipInfo, display: str,
            script: bool = False) -> PickleFindings:
    member = shown(info.orig_filename)
    try:
        data = read_member(cast(IO[bytes], file), info, display, MAX_PICKLE_BYTES)
    except CkptdiffError as exc:
        return PickleFindings(member, info.file_size, 0, (),
                              str(exc).removeprefix(f"{display}: "))
    return findings(member, data, scan_globals(data), 0, False, script=script)


def _is_tar(path: Location) -> bool:
    try:
        with CountingFile(path) as file:
            return tarfile.is_tarfile(cast(IO[bytes], file))
    except (OSError, tarfile.TarError):
        return False


def _tar_pickles(path: Location, notes: list[str]) -> list[PickleFindings]:
    found: list[PickleFindings] = []
    try:
        with CountingFile(path) as file, tarfile.open(fileobj=cast(IO[bytes], file),
                                                      mode="r:") as archive:
            for info, handle in _tar_members(archive, notes):
                head = handle.read(4096)
                if looks_like_pickle(head):
                    found.extend(_stream(_Growing(handle.read, head), f"{shown(info.name)}: ",
                                         notes))
    except (OSError, tarfile.TarError, EOFError) as exc:
        notes.append(f"{UNSCANNED}the rest of a damaged tar archive ({shown(str(exc))})")
    return found


def _tar_members(archive: tarfile.TarFile,
                 notes: list[str]) -> Iterator[tuple[tarfile.TarInfo, IO[bytes]]]:
    for number, info in enumerate(archive):
        if number == MAX_TAR_MEMBERS:
            notes.append(f"{UNSCANNED}tar members after the first {MAX_TAR_MEMBERS:,}")
            return
        handle = archive.extractfile(info) if info.isfile() and info.size else None
        if handle is not None:
            yield info, handle
