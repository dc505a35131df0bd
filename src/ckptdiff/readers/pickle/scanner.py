"""The opcode machine behind :mod:`ckptdiff.readers.pickle.scan`: runs over a pickle's opcodes
without building anything, keeping only the stack's shape (tuple depths, and strings for
STACK_GLOBAL), the memo, and every global the pickle names.

It refuses what would crash or exhaust CPython's C unpickler instead of raising: tuples nested
deeper than :data:`~ckptdiff.readers.safety.MAX_TUPLE_DEPTH` (hashing one as a dict key recurses
in C), memo indices beyond the opcode count (the memo table is allocated up to the index), more
than :data:`~ckptdiff.readers.safety.MAX_PICKLE_OPCODES` opcodes, and more than
:data:`~ckptdiff.readers.safety.MAX_WIDE_INTS` integers that could share one hash.
"""

from __future__ import annotations

import _compat_pickle
import codecs
from collections.abc import Callable

from ckptdiff.readers.pickle.opcodes import (
    EFFECTS,
    FIXED_ARGS,
    LINE_ARGS,
    NAMES,
    SIGNED_SIZES,
    SIZED_ARGS,
    TEXT_OPS,
)
from ckptdiff.readers.safety import MAX_PICKLE_OPCODES, MAX_TUPLE_DEPTH, MAX_WIDE_INTS

_Item = int | str  # a simulated stack entry: a tuple depth, or a string's value
# How an opcode's argument is encoded: none, fixed width, length-prefixed (text kept or only
# its length), newline-ended lines.
_NONE, _FIXED, _SIZED, _TEXT, _LINES = range(5)
_Entry = tuple[int, int, bool, Callable[[object, int], None], str]
_EMPTY = "the pickle's stack is empty where a value is needed"


class PickleScanError(ValueError):
    """The pickle is malformed or hostile in a way the scan refuses."""


class PickleTruncatedError(PickleScanError):
    """The input ended before the pickle's STOP opcode."""


class PickleTooLargeError(PickleScanError):
    """The pickle is longer than the caller's limit."""


class PickleTooComplexError(PickleScanError):
    """The pickle runs more opcodes than :data:`~ckptdiff.readers.safety.MAX_PICKLE_OPCODES`."""


def qualified_global(module: str, name: str) -> tuple[str, str]:
    """Python 2 names mapped to Python 3 ones, as ``pickle`` does (``__builtin__.set``)."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


class Scanner:
    """Runs over complete opcodes of a buffer, keeping the simulated stack between runs.

    The stack holds a tuple depth (int) or a string per value; MARK positions are kept apart, as
    the C unpickler does, so closing a MARK costs only the items above it.
    """

    def __init__(self) -> None:
        self.stack: list[_Item] = []
        self.marks: list[int] = []
        self.memo: dict[int, _Item] = {}
        self.globals: dict[tuple[str, str], int] = {}  # name -> how many times, first-seen order
        self.count = 0
        self.opcodes = bytearray(256)  # 1 for each opcode the pickle uses
        self.wide_ints = 0
        self.done = False
        self._special: dict[str, Callable[[object, int], None]] = {
            "MARK": self._mark, "BINUNICODE": self._text, "SHORT_BINUNICODE": self._text,
            "BINUNICODE8": self._text, "SHORT_BINSTRING": self._text, "BINSTRING": self._text,
            "STRING": self._quoted, "UNICODE": self._escaped, "GLOBAL": self._global,
            "INST": self._global,
            "STACK_GLOBAL": self._stack_global, "EXT1": self._ext, "EXT2": self._ext,
            "EXT4": self._ext, "TUPLE": self._tuple, "TUPLE1": self._tuple,
            "TUPLE2": self._tuple, "TUPLE3": self._tuple, "BINGET": self._binget,
            "LONG_BINGET": self._binget, "GET": self._get, "BINPUT": self._binput,
            "LONG_BINPUT": self._binput, "PUT": self._put, "MEMOIZE": self._put, "DUP": self._dup,
            "STOP": self._stop, "LONG1": self._long, "LONG4": self._long,
            "LONG": self._long_text, "INT": self._long_text}
        # One entry per byte value: how the argument is read, and what the opcode does.
        self._table: list[_Entry | None] = [None] * 256
        for code, name in NAMES.items():
            handler = self._special.get(name) or self._generic(code)
            if code in FIXED_ARGS:
                entry = (_FIXED, FIXED_ARGS[code], False, handler, name)
            elif code in SIZED_ARGS:
                entry = (_TEXT if code in TEXT_OPS else _SIZED, SIZED_ARGS[code],
                         code in SIGNED_SIZES, handler, name)
            elif code in LINE_ARGS:
                entry = (_LINES, LINE_ARGS[code], False, handler, name)
            else:
                entry = (_NONE, 0, False, handler, name)
            self._table[code] = entry
        self._op = ""

    def run(self, buf: bytearray, pos: int) -> int:
        """Process every complete opcode from ``pos``; return where the first incomplete one (or
        the end of the pickle) starts."""
        size = len(buf)
        table = self._table
        from_bytes = int.from_bytes
        while pos < size and not self.done:
            code = buf[pos]
            self.opcodes[code] = 1
            entry = table[code]
            if entry is None:
                raise PickleScanError(f"unknown opcode {code:#04x} at byte {pos}")
            kind, width, signed, handler, self._op = entry
            start = pos + 1
            arg: object = None
            if kind == _NONE:
                end = start
            elif kind == _FIXED:
                end = start + width
                if end > size:
                    return pos
                arg = from_bytes(buf[start:end], "little")
            elif kind != _LINES:
                if start + width > size:
                    return pos
                length = from_bytes(buf[start:start + width], "little", signed=signed)
                if length < 0:
                    raise PickleScanError(f"negative length at byte {pos}")
                end = start + width + length
                if end > size:
                    return pos
                arg = buf[start + width:end] if kind == _TEXT else length
            else:
                end = start
                for _ in range(width):
                    newline = buf.find(b"\n", end)
                    if newline < 0:
                        return pos
                    end = newline + 1
                arg = buf[start:end]
            handler(arg, pos)
            self.count += 1
            if self.count > MAX_PICKLE_OPCODES:
                raise PickleTooComplexError(
                    f"it runs more than {MAX_PICKLE_OPCODES:,} opcodes, ckptdiff's limit")
            pos = end
        return pos

    def _generic(self, code: int) -> Callable[[object, int], None]:
        to_mark, pops, pushes = EFFECTS[code]
        stack = self.stack
        if not to_mark and pops == 0:  # the most common effects, without a loop
            if pushes == 0:
                return lambda arg, pos: None
            if pushes == 1:
                return lambda arg, pos: stack.append(0)

        def effect(arg: object, pos: int) -> None:
            if to_mark:
                self._pop_to_mark()
            if pops:
                self._pop_many(pops)
            if pushes:
                stack.extend([0] * pushes)

        return effect

    def _mark(self, arg: object, pos: int) -> None:
        self.marks.append(len(self.stack))

    def _text(self, arg: object, pos: int) -> None:
        # Strings are kept, as the unpickler decodes them, for a STACK_GLOBAL to name; protocol-0/1
        # byte strings decode as UTF-8 (the encoding of the restricted unpickler and torch.load).
        self.stack.append(_decode(arg, pos, "surrogatepass"))

    def _quoted(self, arg: object, pos: int) -> None:
        assert isinstance(arg, (bytes, bytearray))
        line = bytes(arg).rstrip(b"\r\n")
        if len(line) < 2 or line[0] != line[-1] or line[:1] not in (b"'", b'"'):
            raise PickleScanError(f"STRING opcode argument is not quoted at byte {pos}")
        try:
            self.stack.append(codecs.escape_decode(line[1:-1])[0].decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            raise PickleScanError(f"invalid STRING opcode argument at byte {pos}") from None

    def _escaped(self, arg: object, pos: int) -> None:
        assert isinstance(arg, (bytes, bytearray))
        try:
            self.stack.append(bytes(arg)[:-1].decode("raw-unicode-escape"))
        except UnicodeDecodeError:
            raise PickleScanError(f"invalid UNICODE opcode argument at byte {pos}") from None

    def _global(self, arg: object, pos: int) -> None:
        module, name, _ = _decode(arg, pos, "strict").split("\n")
        self._found(qualified_global(module, name))
        if self._op == "INST":
            self._pop_to_mark()
        self.stack.append(0)

    def _stack_global(self, arg: object, pos: int) -> None:
        name, module = self._pop(), self._pop()
        if not isinstance(module, str) or not isinstance(name, str):
            raise PickleScanError(f"STACK_GLOBAL without two strings at byte {pos}")
        self._found(qualified_global(module, name))
        self.stack.append(0)

    def _ext(self, arg: object, pos: int) -> None:
        self._found(("copyreg", f"extension_code_{arg}"))
        self.stack.append(0)

    def _long(self, arg: object, pos: int) -> None:
        assert isinstance(arg, int)
        self._int(arg >= 8)  # 8+ bytes can reach 2**61 - 1

    def _long_text(self, arg: object, pos: int) -> None:
        assert isinstance(arg, (bytes, bytearray))
        self._int(len(arg.strip().lstrip(b"-").rstrip(b"L")) >= 19)  # 2**61 has 19 digits

    def _int(self, wide: bool) -> None:
        # Integers of 61+ bits can all hash alike (Python hashes ints modulo 2**61 - 1): a dict
        # or set of many of them makes unpickling quadratic. Checkpoints hold a few at most.
        if wide:
            self.wide_ints += 1
            if self.wide_ints > MAX_WIDE_INTS:
                raise PickleTooComplexError(
                    f"it holds more than {MAX_WIDE_INTS:,} integers of 61 bits or more, which "
                    "can be chosen to hash alike (a hash-flooding attack?)")
        self.stack.append(0)

    def _found(self, name: tuple[str, str]) -> None:
        self.globals[name] = self.globals.get(name, 0) + 1

    def _tuple(self, arg: object, pos: int) -> None:
        op = self._op
        items = self._pop_to_mark() if op == "TUPLE" else self._pop_many(int(op[-1]))
        depth = 1 + max([d for d in items if type(d) is int], default=0)
        if depth > MAX_TUPLE_DEPTH:
            raise PickleScanError(f"tuples nest more than {MAX_TUPLE_DEPTH} levels deep")
        self.stack.append(depth)

    def _binget(self, arg: object, pos: int) -> None:
        # BINGET and LONG_BINGET, a third of a checkpoint's opcodes: the index is an int.
        try:
            self.stack.append(self.memo[arg])  # type: ignore[index]
        except KeyError:
            raise PickleScanError(f"memo entry {arg} is read before it is written") from None

    def _binput(self, arg: object, pos: int) -> None:
        assert isinstance(arg, int)
        if arg > self.count:
            raise PickleScanError(f"memo index {arg} is out of range")
        self.memo[arg] = self._top()

    def _get(self, arg: object, pos: int) -> None:
        index = _line_int(arg) if self._op == "GET" else arg
        if not isinstance(index, int) or index not in self.memo:
            raise PickleScanError(f"memo entry {index} is read before it is written")
        self.stack.append(self.memo[index])

    def _put(self, arg: object, pos: int) -> None:
        op = self._op
        index = len(self.memo) if op == "MEMOIZE" else _line_int(arg) if op == "PUT" else arg
        if not isinstance(index, int) or not 0 <= index <= self.count:
            raise PickleScanError(f"memo index {index} is out of range")
        self.memo[index] = self._top()

    def _dup(self, arg: object, pos: int) -> None:
        self.stack.append(self._top())

    def _stop(self, arg: object, pos: int) -> None:
        self._pop()
        self.done = True

    def _top(self) -> _Item:
        if len(self.stack) <= (self.marks[-1] if self.marks else 0):
            raise PickleScanError(_EMPTY)
        return self.stack[-1]

    def _pop_many(self, count: int) -> list[_Item]:
        """The top ``count`` (≥ 1) items, removed; none may lie below the last MARK."""
        stack = self.stack
        if len(stack) - count < (self.marks[-1] if self.marks else 0):
            raise PickleScanError(_EMPTY)
        items = stack[-count:]
        del stack[-count:]
        return items

    def _pop(self) -> _Item:
        item = self._top()
        self.stack.pop()
        return item

    def _pop_to_mark(self) -> list[_Item]:
        if not self.marks:
            raise PickleScanError("the pickle closes a MARK it never opened")
        mark = self.marks.pop()
        items = self.stack[mark:]
        del self.stack[mark:]
        return items


def _decode(arg: object, pos: int, errors: str) -> str:
    assert isinstance(arg, (bytes, bytearray))
    try:
        return bytes(arg).decode("utf-8", errors)
    except UnicodeDecodeError:
        raise PickleScanError(f"invalid UTF-8 text at byte {pos}") from None


def _line_int(arg: object) -> int:
    assert isinstance(arg, (bytes, bytearray))
    try:
        return int(bytes(arg).strip())
    except ValueError:
        raise PickleScanError("a memo index is not a number") from None
