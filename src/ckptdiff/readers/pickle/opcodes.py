"""Tables of pickle opcodes for the scanner: how each argument is encoded, and the effect on
the unpickler's stack.

The table is written out (importing :mod:`pickletools` to derive it costs every ``inspect`` a
few milliseconds); :func:`derive_from_pickletools` derives it again, and a test keeps the two
equal.
"""

from __future__ import annotations

from collections.abc import Mapping

# (code, name, argument encoding, width or line count, pops to a MARK, items popped (below the
# MARK when it does), items pushed)
Opcode = tuple[int, str, str, int, bool, int, int]
OPCODES: tuple[Opcode, ...] = (
    (40, 'MARK', 'none', 0, False, 0, 1),
    (41, 'EMPTY_TUPLE', 'none', 0, False, 0, 1),
    (46, 'STOP', 'none', 0, False, 1, 0),
    (48, 'POP', 'none', 0, False, 1, 0),
    (49, 'POP_MARK', 'none', 0, True, 0, 0),
    (50, 'DUP', 'none', 0, False, 1, 2),
    (66, 'BINBYTES', 'sized', 4, False, 0, 1),
    (67, 'SHORT_BINBYTES', 'sized', 1, False, 0, 1),
    (70, 'FLOAT', 'lines', 1, False, 0, 1),
    (71, 'BINFLOAT', 'fixed', 8, False, 0, 1),
    (73, 'INT', 'lines', 1, False, 0, 1),
    (74, 'BININT', 'fixed', 4, False, 0, 1),
    (75, 'BININT1', 'fixed', 1, False, 0, 1),
    (76, 'LONG', 'lines', 1, False, 0, 1),
    (77, 'BININT2', 'fixed', 2, False, 0, 1),
    (78, 'NONE', 'none', 0, False, 0, 1),
    (80, 'PERSID', 'lines', 1, False, 0, 1),
    (81, 'BINPERSID', 'none', 0, False, 1, 1),
    (82, 'REDUCE', 'none', 0, False, 2, 1),
    (83, 'STRING', 'lines', 1, False, 0, 1),
    (84, 'BINSTRING', 'sized', 4, False, 0, 1),
    (85, 'SHORT_BINSTRING', 'sized', 1, False, 0, 1),
    (86, 'UNICODE', 'lines', 1, False, 0, 1),
    (88, 'BINUNICODE', 'sized', 4, False, 0, 1),
    (93, 'EMPTY_LIST', 'none', 0, False, 0, 1),
    (97, 'APPEND', 'none', 0, False, 2, 1),
    (98, 'BUILD', 'none', 0, False, 2, 1),
    (99, 'GLOBAL', 'lines', 2, False, 0, 1),
    (100, 'DICT', 'none', 0, True, 0, 1),
    (101, 'APPENDS', 'none', 0, True, 1, 1),
    (103, 'GET', 'lines', 1, False, 0, 1),
    (104, 'BINGET', 'fixed', 1, False, 0, 1),
    (105, 'INST', 'lines', 2, True, 0, 1),
    (106, 'LONG_BINGET', 'fixed', 4, False, 0, 1),
    (108, 'LIST', 'none', 0, True, 0, 1),
    (111, 'OBJ', 'none', 0, True, 0, 1),
    (112, 'PUT', 'lines', 1, False, 0, 0),
    (113, 'BINPUT', 'fixed', 1, False, 0, 0),
    (114, 'LONG_BINPUT', 'fixed', 4, False, 0, 0),
    (115, 'SETITEM', 'none', 0, False, 3, 1),
    (116, 'TUPLE', 'none', 0, True, 0, 1),
    (117, 'SETITEMS', 'none', 0, True, 1, 1),
    (125, 'EMPTY_DICT', 'none', 0, False, 0, 1),
    (128, 'PROTO', 'fixed', 1, False, 0, 0),
    (129, 'NEWOBJ', 'none', 0, False, 2, 1),
    (130, 'EXT1', 'fixed', 1, False, 0, 1),
    (131, 'EXT2', 'fixed', 2, False, 0, 1),
    (132, 'EXT4', 'fixed', 4, False, 0, 1),
    (133, 'TUPLE1', 'none', 0, False, 1, 1),
    (134, 'TUPLE2', 'none', 0, False, 2, 1),
    (135, 'TUPLE3', 'none', 0, False, 3, 1),
    (136, 'NEWTRUE', 'none', 0, False, 0, 1),
    (137, 'NEWFALSE', 'none', 0, False, 0, 1),
    (138, 'LONG1', 'sized', 1, False, 0, 1),
    (139, 'LONG4', 'sized', 4, False, 0, 1),
    (140, 'SHORT_BINUNICODE', 'sized', 1, False, 0, 1),
    (141, 'BINUNICODE8', 'sized', 8, False, 0, 1),
    (142, 'BINBYTES8', 'sized', 8, False, 0, 1),
    (143, 'EMPTY_SET', 'none', 0, False, 0, 1),
    (144, 'ADDITEMS', 'none', 0, True, 1, 1),
    (145, 'FROZENSET', 'none', 0, True, 0, 1),
    (146, 'NEWOBJ_EX', 'none', 0, False, 3, 1),
    (147, 'STACK_GLOBAL', 'none', 0, False, 2, 1),
    (148, 'MEMOIZE', 'none', 0, False, 1, 1),
    (149, 'FRAME', 'fixed', 8, False, 0, 0),
    (150, 'BYTEARRAY8', 'sized', 8, False, 0, 1),
    (151, 'NEXT_BUFFER', 'none', 0, False, 0, 1),
    (152, 'READONLY_BUFFER', 'none', 0, False, 1, 1),
)

_FIXED = {"uint1": 1, "uint2": 2, "int4": 4, "uint4": 4, "uint8": 8, "float8": 8}
_SIZED = {"long1": 1, "string1": 1, "bytes1": 1, "unicodestring1": 1, "long4": 4, "string4": 4,
          "bytes4": 4, "unicodestring4": 4, "bytes8": 8, "bytearray8": 8, "unicodestring8": 8}
_LINES = {"decimalnl_short": 1, "decimalnl_long": 1, "stringnl": 1, "stringnl_noescape": 1,
          "unicodestringnl": 1, "floatnl": 1, "stringnl_noescape_pair": 2}


def derive_from_pickletools() -> tuple[Opcode, ...]:
    """:data:`OPCODES` as this Python's :mod:`pickletools` describes them."""
    import pickletools

    rows: list[Opcode] = []
    for op in pickletools.opcodes:
        if op.arg is None:
            kind, width = "none", 0
        elif op.arg.name in _FIXED:
            kind, width = "fixed", _FIXED[op.arg.name]
        elif op.arg.name in _SIZED:
            kind, width = "sized", _SIZED[op.arg.name]
        else:
            kind, width = "lines", _LINES[op.arg.name]
        before = op.stack_before
        to_mark = pickletools.markobject in before
        pops = before.index(pickletools.markobject) if to_mark else len(before)
        rows.append((ord(op.code), op.name, kind, width, to_mark, pops, len(op.stack_after)))
    return tuple(sorted(rows))


NAMES: Mapping[int, str] = {row[0]: row[1] for row in OPCODES}
FIXED_ARGS: Mapping[int, int] = {row[0]: row[3] for row in OPCODES if row[2] == "fixed"}
SIZED_ARGS: Mapping[int, int] = {row[0]: row[3] for row in OPCODES if row[2] == "sized"}
LINE_ARGS: Mapping[int, int] = {row[0]: row[3] for row in OPCODES if row[2] == "lines"}
EFFECTS: Mapping[int, tuple[bool, int, int]] = {row[0]: row[4:] for row in OPCODES}
# Length-prefixed opcodes whose length is signed (BINSTRING, LONG4); every other is unsigned.
SIGNED_SIZES = frozenset(code for code, name in NAMES.items() if name in ("BINSTRING", "LONG4"))
# Length-prefixed opcodes whose argument the scanner keeps (strings STACK_GLOBAL may name; the
# byte strings of protocols 0-2 are text to an unpickler with an encoding).
TEXT_OPS = frozenset(code for code, name in NAMES.items()
                     if name in ("BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8", "BINSTRING",
                                 "SHORT_BINSTRING"))
