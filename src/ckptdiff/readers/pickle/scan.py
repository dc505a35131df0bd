"""A pass over a pickle's opcodes, without building anything, before it is unpickled.

It finds where the pickle ends (so consecutive pickles in one file can be read in turn) and every
global it names, so an unsafe file is refused naming all of them and nothing is unpickled at all;
the opcode machine that does it, and what it refuses (tuples nested deeper than
:data:`MAX_TUPLE_DEPTH`, impossible memo indices, too many opcodes or wide integers), is in
:mod:`ckptdiff.readers.pickle.scanner`. Framework-agnostic: any pickle-based reader can use it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from ckptdiff.readers.pickle.scanner import (
    PickleScanError,
    PickleTooComplexError,
    PickleTooLargeError,
    PickleTruncatedError,
    Scanner,
    qualified_global,
)
from ckptdiff.readers.safety import MAX_TUPLE_DEPTH

__all__ = ["INCOMPLETE", "MAX_TUPLE_DEPTH", "GlobalsScan", "PickleReader", "PickleScan",
           "PickleScanError", "PickleTooComplexError", "PickleTooLargeError",
           "PickleTruncatedError", "qualified_global", "scan_globals", "scan_pickle"]


class PickleScan(NamedTuple):
    """One pickle's bytes, every global it names, as ``(module, name)``, and the opcodes it
    uses (``opcodes[code]`` is 1 for each)."""

    data: bytes
    globals: frozenset[tuple[str, str]]
    opcodes: bytes = bytes(256)


class PickleReader:
    """Reads consecutive pickles from ``read`` (a file's ``read``), scanning each.

    Input is read in chunks that start at ``first_chunk`` bytes and double up to 256 KiB while a
    pickle goes on, so reading stops at most about one chunk past the last pickle asked for.
    """

    def __init__(self, read: Callable[[int], bytes], limit: int, first_chunk: int = 4096) -> None:
        self._read = read
        self._limit = limit
        self._first_chunk = first_chunk
        self._buffer = bytearray()
        self.position = 0  # offset of the next pickle from where reading started

    @property
    def read_ahead(self) -> bytes:
        """The bytes already read past the last pickle (they start at ``position``)."""
        return bytes(self._buffer)

    def next(self) -> PickleScan:
        """Scan the next pickle and return it (raises :class:`PickleScanError` and subclasses)."""
        scanner = Scanner()
        chunk = self._first_chunk
        offset = 0
        while not scanner.done:
            offset = scanner.run(self._buffer, offset)
            if scanner.done:
                break
            if len(self._buffer) > self._limit:
                raise PickleTooLargeError(f"the pickle is larger than {self._limit:,} bytes")
            more = self._read(min(chunk, self._limit + 1 - len(self._buffer)))
            if not more:
                raise PickleTruncatedError("the input ends inside the pickle")
            self._buffer += more
            chunk = min(chunk * 2, 1 << 18)
        if offset > self._limit:
            raise PickleTooLargeError(f"the pickle is larger than {self._limit:,} bytes")
        data = bytes(self._buffer[:offset])
        del self._buffer[:offset]
        self.position += offset
        return PickleScan(data, frozenset(scanner.globals), bytes(scanner.opcodes))


def scan_pickle(data: bytes, limit: int) -> PickleScan:
    """Scan the pickle at the start of ``data`` (any bytes after its STOP are ignored)."""
    reader = PickleReader(lambda size: b"", limit)
    reader._buffer = bytearray(data)  # noqa: SLF001 - the whole input is already in memory
    return reader.next()


INCOMPLETE = "the input ends inside the pickle"


class GlobalsScan(NamedTuple):
    """What a scan found, also when it stopped at an error: each global named (with how many
    times, in first-seen order), where the pickle ends, and the error, if any."""

    globals: dict[tuple[str, str], int]
    end: int
    opcodes: int
    error: str | None


def scan_globals(data: bytes, start: int = 0) -> GlobalsScan:
    """List the globals of the pickle at ``data[start:]`` without ever refusing: a scanner's view
    (``ckptdiff inspect --unsafe-report``), which keeps what it found before any error."""
    scanner = Scanner()
    error: str | None = None
    end = start
    try:
        end = scanner.run(bytearray(data), start)
        if not scanner.done:
            error = INCOMPLETE
    except PickleScanError as exc:
        error = str(exc)
    return GlobalsScan(dict(scanner.globals), end, scanner.count, error)
