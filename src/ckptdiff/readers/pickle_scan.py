"""A pass over a pickle's opcodes, without building anything, before it is unpickled.

It reads the pickle's bytes (stopping exactly at STOP, so consecutive pickles in one file can be
read in turn) and finds every global the pickle names, so an unsafe file is refused naming all of
them and nothing is unpickled at all. It also refuses what would crash or exhaust CPython's C
unpickler instead of raising: tuples nested deeper than :data:`MAX_TUPLE_DEPTH` (hashing one as a
dict key recurses in C and overflows the stack) and memo indices beyond the pickle's opcode count
(the memo table is allocated up to the index). Framework-agnostic: any pickle-based reader can
use it.
"""

from __future__ import annotations

import _compat_pickle
import pickletools
from dataclasses import dataclass
from typing import Protocol

# Real checkpoints nest tuples a handful of levels deep; CPython crashes somewhere past ~100k.
MAX_TUPLE_DEPTH = 1000

_MARK = None  # a MARK on the simulated stack; other entries are (tuple depth, text or None)
_TEXT_OPS = frozenset({"UNICODE", "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "STRING",
                       "BINSTRING", "SHORT_BINSTRING"})
_GET_OPS = frozenset({"GET", "BINGET", "LONG_BINGET"})
_PUT_OPS = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})
_EXT_OPS = frozenset({"EXT1", "EXT2", "EXT4"})
_TUPLE_SIZES = {"TUPLE1": 1, "TUPLE2": 2, "TUPLE3": 3}

_Item = tuple[int, str | None] | None


class PickleSource(Protocol):
    """Where pickles are read from: a binary file, ``io.BytesIO``, or a read-ahead wrapper."""

    def read(self, size: int, /) -> bytes:
        """Up to ``size`` bytes."""
        ...

    def readline(self, size: int, /) -> bytes:
        """Up to the next newline, at most ``size`` bytes."""
        ...


class PickleScanError(ValueError):
    """The pickle is malformed or hostile in a way the scan refuses."""


class PickleTruncatedError(PickleScanError):
    """The stream ended before the pickle's STOP opcode."""


class PickleTooLargeError(PickleScanError):
    """The pickle is longer than the caller's limit."""


@dataclass(frozen=True)
class PickleScan:
    """What the scan found: the pickle's bytes and every global it names, as ``(module, name)``."""

    data: bytes
    globals: frozenset[tuple[str, str]]


class _Capture:
    """Passes reads through to ``stream`` and keeps the bytes, up to ``limit`` of them."""

    def __init__(self, stream: PickleSource, limit: int) -> None:
        self._stream = stream
        self._limit = limit
        self.data = bytearray()
        self.ended = False

    def read(self, count: int = -1) -> bytes:
        if count < 0 or len(self.data) + count > self._limit:
            raise PickleTooLargeError(f"the pickle is larger than {self._limit:,} bytes")
        return self._keep(self._stream.read(count), count)

    def readline(self) -> bytes:
        line = self._stream.readline(self._limit - len(self.data) + 1)
        if line and not line.endswith(b"\n") and len(self.data) + len(line) > self._limit:
            raise PickleTooLargeError(f"the pickle is larger than {self._limit:,} bytes")
        return self._keep(line, None)

    def _keep(self, chunk: bytes, wanted: int | None) -> bytes:
        if len(chunk) < wanted if wanted is not None else not chunk.endswith(b"\n"):
            self.ended = True
        self.data += chunk
        return chunk


def qualified_global(module: str, name: str) -> tuple[str, str]:
    """Python 2 names mapped to Python 3 ones, as ``pickle`` does (``__builtin__.set``)."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


def scan_pickle(stream: PickleSource, limit: int) -> PickleScan:
    """Read one pickle from ``stream``'s position to its STOP opcode (and not a byte further).

    Raises :class:`PickleTruncatedError` when the stream ends first, :class:`PickleTooLargeError`
    past ``limit`` bytes, and :class:`PickleScanError` for malformed or refused content.
    """
    scanner = _Scanner()
    capture = _Capture(stream, limit)
    try:
        opcodes = pickletools.genops(capture)  # type: ignore[arg-type]  # read/readline suffice
        for count, (opcode, arg, _) in enumerate(opcodes):
            scanner.step(opcode, arg, count)
    except PickleScanError:
        raise
    except (ValueError, IndexError, KeyError, TypeError, UnicodeDecodeError) as exc:
        if capture.ended:
            raise PickleTruncatedError("the file ends inside the pickle") from None
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise PickleScanError(message) from None
    return PickleScan(bytes(capture.data), frozenset(scanner.globals))


class _Scanner:
    """Simulates the unpickler's stack, tracking only tuple depth and string values."""

    def __init__(self) -> None:
        self.stack: list[_Item] = []
        self.memo: dict[int, _Item] = {}
        self.globals: set[tuple[str, str]] = set()

    def step(self, opcode: pickletools.OpcodeInfo, arg: object, count: int) -> None:
        name = opcode.name
        if name == "MARK":
            self.stack.append(_MARK)
        elif name in _TEXT_OPS:
            self.stack.append((0, arg if isinstance(arg, str) else None))
        elif name in ("GLOBAL", "INST"):
            module, _, attr = str(arg).partition(" ")
            self._named(module, attr)
            if name == "INST":
                self._pop_to_mark()
            self.stack.append((0, None))
        elif name == "STACK_GLOBAL":
            attr_item, module_item = self._pop(), self._pop()
            if module_item and attr_item and module_item[1] and attr_item[1]:
                self._named(module_item[1], attr_item[1])
            self.stack.append((0, None))
        elif name in _EXT_OPS:
            self.globals.add(("copyreg", f"extension_code_{arg}"))
            self.stack.append((0, None))
        elif name == "TUPLE" or name in _TUPLE_SIZES:
            items = self._pop_to_mark() if name == "TUPLE" else [
                self._pop() for _ in range(_TUPLE_SIZES[name])]
            depth = 1 + max((item[0] for item in items if item), default=0)
            if depth > MAX_TUPLE_DEPTH:
                raise PickleScanError(f"tuples nest more than {MAX_TUPLE_DEPTH} levels deep")
            self.stack.append((depth, None))
        elif name in _GET_OPS:
            if arg not in self.memo:
                raise PickleScanError(f"memo entry {arg} is read before it is written")
            self.stack.append(self.memo[arg])
        elif name in _PUT_OPS or name == "MEMOIZE":
            index = len(self.memo) if name == "MEMOIZE" else arg
            if not isinstance(index, int) or not 0 <= index <= count or not self.stack:
                raise PickleScanError(f"memo index {index} is out of range")
            self.memo[index] = self.stack[-1]
        elif name == "DUP":
            self.stack.append(self._top())
        else:
            self._generic(opcode)

    def _generic(self, opcode: pickletools.OpcodeInfo) -> None:
        before = opcode.stack_before
        if pickletools.markobject in before:
            self._pop_to_mark()
            popped = [self._pop() for _ in range(before.index(pickletools.markobject))]
        else:
            popped = [self._pop() for _ in range(len(before))]
        # Opcodes that change an object in place (APPEND, SETITEM, BUILD …) leave it on the stack.
        keep = popped[-1] if popped and len(opcode.stack_after) == 1 and opcode.name in (
            "APPEND", "APPENDS", "SETITEM", "SETITEMS", "ADDITEMS", "BUILD") else (0, None)
        self.stack.extend(keep for _ in opcode.stack_after)

    def _named(self, module: str, attr: str) -> None:
        self.globals.add(qualified_global(module, attr))

    def _top(self) -> _Item:
        if not self.stack or self.stack[-1] is _MARK:
            raise PickleScanError("the pickle's stack is empty where a value is needed")
        return self.stack[-1]

    def _pop(self) -> _Item:
        item = self._top()
        self.stack.pop()
        return item

    def _pop_to_mark(self) -> list[_Item]:
        items: list[_Item] = []
        while self.stack and self.stack[-1] is not _MARK:
            items.append(self.stack.pop())
        if not self.stack:
            raise PickleScanError("the pickle closes a MARK it never opened")
        self.stack.pop()
        return items
