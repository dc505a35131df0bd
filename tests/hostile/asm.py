"""A tiny pickle assembler: writes opcodes by hand and remembers every global it names.

Hostile pickles use opcodes and encodings no ``pickle.dumps`` call produces (strings for
``STACK_GLOBAL`` from protocol-0 opcodes, memo overwrites, ``INST``/``OBJ``…), so they are
assembled here. :attr:`Asm.globals` is the ground truth a reader's report is checked against:
every ``(module, name)`` the assembled bytes name, with Python 2 names mapped as pickle maps them.
"""

from __future__ import annotations

import _compat_pickle
import struct
from typing import Any


def py3_name(module: str, name: str) -> str:
    """The dotted name ``pickle`` resolves ``module``/``name`` to (``__builtin__`` → builtins)."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        module, name = _compat_pickle.NAME_MAPPING[(module, name)]
    else:
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
    return f"{module}.{name}"


class Asm:
    """Accumulates opcodes; ``text_style`` picks how strings are written."""

    def __init__(self, protocol: int = 2, text_style: str = "auto") -> None:
        self.protocol = protocol
        self.text_style = text_style
        self.out = bytearray()
        self.globals: set[str] = set()
        self.memo = 0

    # --- raw opcodes ---------------------------------------------------------------------------
    def op(self, code: bytes) -> Asm:
        self.out += code
        return self

    def mark(self) -> Asm:
        return self.op(b"(")

    def put(self, index: int | None = None) -> int:
        """Memoize the top of the stack (PUT/BINPUT/LONG_BINPUT/MEMOIZE by protocol)."""
        fresh = index is None
        if index is None:
            index = self.memo
            self.memo += 1
        if self.protocol == 0:
            self.op(b"p" + str(index).encode() + b"\n")
        elif self.protocol >= 4 and fresh:
            self.op(b"\x94")
        elif index < 256:
            self.op(b"q" + bytes([index]))
        else:
            self.op(b"r" + struct.pack("<I", index))
        return index

    def get(self, index: int) -> Asm:
        if self.protocol == 0:
            return self.op(b"g" + str(index).encode() + b"\n")
        return self.op(b"h" + bytes([index]) if index < 256 else b"j" + struct.pack("<I", index))

    # --- values --------------------------------------------------------------------------------
    def text(self, value: str, style: str | None = None) -> Asm:
        style = style or self.text_style
        if style == "auto":
            style = {0: "UNICODE", 1: "BINUNICODE", 2: "BINUNICODE", 3: "BINUNICODE"}.get(
                self.protocol, "SHORT_BINUNICODE")
        raw = value.encode("utf-8", "surrogatepass")
        if style == "UNICODE":  # escaped as pickle's protocol 0 escapes them
            for char in "\\\0\n\r\x1a":
                value = value.replace(char, f"\\u{ord(char):04x}")
            return self.op(b"V" + value.encode("raw-unicode-escape") + b"\n")
        if style == "STRING":
            return self.op(b"S" + repr(raw)[1:].encode("ascii") + b"\n")
        if style == "SHORT_BINSTRING" and len(raw) < 256:
            return self.op(b"U" + bytes([len(raw)]) + raw)
        if style in ("BINSTRING", "SHORT_BINSTRING"):
            return self.op(b"T" + struct.pack("<i", len(raw)) + raw)
        if style == "SHORT_BINUNICODE" and len(raw) < 256:
            return self.op(b"\x8c" + bytes([len(raw)]) + raw)
        if style == "BINUNICODE8":
            return self.op(b"\x8d" + struct.pack("<Q", len(raw)) + raw)
        return self.op(b"X" + struct.pack("<I", len(raw)) + raw)

    def bytes_(self, value: bytes) -> Asm:
        if self.protocol >= 5:
            return self.op(b"\x96" + struct.pack("<Q", len(value)) + value)  # a bytearray
        if self.protocol >= 3:
            return self.op(b"B" + struct.pack("<I", len(value)) + value)
        self.glob("_codecs", "encode")  # protocol 0-2: bytes as _codecs.encode(text, 'latin1')
        return self.mark().text(value.decode("latin-1")).text("latin1").op(b"tR")

    def value(self, value: Any) -> Asm:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, bool):
            return self.op(b"\x88" if value else b"\x89")
        if isinstance(value, int):
            if -2**31 <= value < 2**31:
                return self.op(b"I" + str(value).encode() + b"\n" if self.protocol == 0
                               else b"J" + struct.pack("<i", value))
            if self.protocol < 2:
                return self.op(b"L" + str(value).encode() + b"L\n")
            data = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
            return self.op(b"\x8a" + bytes([len(data)]) + data)
        if isinstance(value, bytes):
            return self.bytes_(value)
        if value is None:
            return self.op(b"N")
        if isinstance(value, tuple):
            return self.tuple_(list(value))
        if isinstance(value, list):
            self.op(b"(")
            for item in value:
                self.value(item)
            return self.op(b"l")
        if isinstance(value, dict):
            self.op(b"(")
            for key, item in value.items():
                self.value(key).value(item)
            return self.op(b"d")
        raise TypeError(type(value))

    def tuple_(self, items: list[Any]) -> Asm:
        self.mark()
        for item in items:
            self.value(item)
        return self.op(b"t")

    # --- globals -------------------------------------------------------------------------------
    def glob(self, module: str, name: str) -> Asm:
        """GLOBAL opcode."""
        self.globals.add(py3_name(module, name))
        return self.op(b"c" + f"{module}\n{name}\n".encode("utf-8", "surrogatepass"))

    def stack_global(self, module: str, name: str, style: str | None = None,
                     via_memo: bool = False) -> Asm:
        """STACK_GLOBAL with its two strings written in ``style``, optionally through the memo."""
        self.globals.add(py3_name(module, name))
        if via_memo:
            first = (self.text(module, style), self.put())[1]
            self.op(b"0")
            second = (self.text(name, style), self.put())[1]
            self.op(b"0").get(first).get(second)
        else:
            self.text(module, style).text(name, style)
        return self.op(b"\x93")

    # --- the finished pickle -------------------------------------------------------------------
    def complete(self) -> bytes:
        """PROTO (from protocol 2), a FRAME around the body (from protocol 4), the body, STOP."""
        body = bytes(self.out) + b"."
        if self.protocol < 2:
            return body
        head = b"\x80" + bytes([self.protocol])
        if self.protocol >= 4:
            head += b"\x95" + struct.pack("<Q", len(body))
        return head + body
