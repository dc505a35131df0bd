"""Tables of pickle opcodes for the scanner, derived once from :mod:`pickletools`.

For every opcode: how its argument is encoded (fixed width, length-prefixed, or newline-ended
lines) and its effect on the unpickler's stack (items popped, whether it pops to a MARK, items
pushed).
"""

from __future__ import annotations

import pickletools
from collections.abc import Mapping

# Argument readers by their pickletools names, grouped by how the scanner finds the end.
_FIXED = {"uint1": 1, "uint2": 2, "int4": 4, "uint4": 4, "uint8": 8, "float8": 8}
_SIZED = {"long1": 1, "string1": 1, "bytes1": 1, "unicodestring1": 1, "long4": 4, "string4": 4,
          "bytes4": 4, "unicodestring4": 4, "bytes8": 8, "bytearray8": 8, "unicodestring8": 8}
_LINES = {"decimalnl_short": 1, "decimalnl_long": 1, "stringnl": 1, "stringnl_noescape": 1,
          "unicodestringnl": 1, "floatnl": 1, "stringnl_noescape_pair": 2}


def _tables() -> tuple[dict[int, str], dict[int, int], dict[int, int], dict[int, int],
                       dict[int, tuple[bool, int, int]]]:
    names: dict[int, str] = {}
    fixed: dict[int, int] = {}
    sized: dict[int, int] = {}
    lines: dict[int, int] = {}
    effects: dict[int, tuple[bool, int, int]] = {}
    for op in pickletools.opcodes:
        code = ord(op.code)
        names[code] = op.name
        if op.arg is not None:
            reader = op.arg.name
            if reader in _FIXED:
                fixed[code] = _FIXED[reader]
            elif reader in _SIZED:
                sized[code] = _SIZED[reader]
            else:
                lines[code] = _LINES[reader]
        before = op.stack_before
        if pickletools.markobject in before:
            effects[code] = (True, before.index(pickletools.markobject), len(op.stack_after))
        else:
            effects[code] = (False, len(before), len(op.stack_after))
    return names, fixed, sized, lines, effects


_names, _fixed, _sized, _lines, _effects = _tables()

NAMES: Mapping[int, str] = _names
FIXED_ARGS: Mapping[int, int] = _fixed
SIZED_ARGS: Mapping[int, int] = _sized
LINE_ARGS: Mapping[int, int] = _lines
EFFECTS: Mapping[int, tuple[bool, int, int]] = _effects
# Length-prefixed opcodes whose length is signed (BINSTRING, LONG4); every other is unsigned.
SIGNED_SIZES = frozenset(code for code, name in _names.items() if name in ("BINSTRING", "LONG4"))
# Length-prefixed opcodes whose argument the scanner keeps (strings STACK_GLOBAL may name; the
# byte strings of protocols 0-2 are text to an unpickler with an encoding).
TEXT_OPS = frozenset(code for code, name in _names.items()
                     if name in ("BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8", "BINSTRING",
                                 "SHORT_BINSTRING"))
