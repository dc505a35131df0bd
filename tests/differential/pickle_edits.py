"""Structure-aware edits of a torch pickle: one opcode changed, swapped for its protocol-4/5
twin, dropped, or a global, string, integer, bool or memo index set to a chosen value.

Edits work on :func:`pickletools.genops` positions of a protocol-2 pickle, which has no FRAME
(so no length to fix after an edit). Each edit is deterministic given its RNG.
"""

from __future__ import annotations

import pickletools
import random
import struct
from collections.abc import Callable

Op = tuple[str, object, int, int]  # name, argument, start, end

# Globals to write in place of one the pickle names: torch allows the first group, ckptdiff
# allowed some of the second, and the rest are the bypass classes deny-list scanners miss.
GLOBALS = [
    "torch._utils\n_rebuild_tensor_v2", "torch\nFloatStorage", "torch\nHalfStorage",
    "torch\nLongStorage", "torch\nBFloat16Storage", "torch\nfloat16", "torch\nint32",
    "collections\nOrderedDict", "torch._utils\n_rebuild_parameter", "torch\nSize",
    "torch\nhalf", "torch\nUntypedStorage", "torch.storage\nUntypedStorage",
    "torch.cuda\nFloatStorage", "torch.cuda\nFloatTensor", "torch.sparse\nFloatTensor",
    "torch\nTensor", "torch\nFloatTensor", "torch.storage\nTypedStorage", "torch\nqint8",
    "builtins\nfrozenset", "builtins\ndict", "__builtin__\nset", "copyreg\n_reconstructor",
    "runpy\n_run_code", "pydoc\nlocate", "_posixsubprocess\nfork_exec", "site\nmain",
    "atexit\nregister", "functools\npartial", "operator\nattrgetter",
    "torch.serialization\nload", "numpy\nload", "numpy.core.multiarray\n_reconstruct",
]
STRINGS = ["cpu:0", " cpu", "cpu ", "CPU", "meta", "cuda", "mps", "xla:0", "", "0", "1",
           "weight", "bias", "storage", "a.b", "data", "\u00e9", "cpu\n", "privateuseone"]
INTS = [0, 1, 2, 3, 4, 5, 7, 12, 255, 256, 65535, 2**31 - 1, -1, 2**40]


def ops(data: bytes) -> list[Op]:
    """Every opcode of the pickle at the start of ``data``: name, argument, start and end."""
    found = []
    listed = list(pickletools.genops(data))
    for index, (op, arg, pos) in enumerate(listed):
        end = listed[index + 1][2] if index + 1 < len(listed) else pos + 1
        found.append((op.name, arg, int(pos or 0), int(end or 0)))
    return found


def _unicode(text: str) -> bytes:
    raw = text.encode("utf-8", "surrogatepass")
    return b"X" + struct.pack("<I", len(raw)) + raw


def _int(value: int) -> bytes:
    if 0 <= value < 256:
        return b"K" + bytes([value])
    if 0 <= value < 65536:
        return b"M" + struct.pack("<H", value)
    if -2**31 <= value < 2**31:
        return b"J" + struct.pack("<i", value)
    raw = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(raw)]) + raw


def _replace(data: bytes, op: Op, new: bytes) -> bytes:
    return data[:op[2]] + new + data[op[3]:]


def _protocol4(op: Op, rng: random.Random) -> bytes | None:
    """The protocol-4/5 twin of an opcode (what ``pickle_protocol=4`` would have written)."""
    name, arg = op[0], op[1]
    if name in ("BINPUT", "LONG_BINPUT"):
        return b"\x94"
    if name == "BINUNICODE" and isinstance(arg, str):
        raw = arg.encode("utf-8", "surrogatepass")
        return b"\x8c" + bytes([len(raw)]) + raw if len(raw) < 256 else None
    if name == "GLOBAL" and isinstance(arg, str):
        module, _, attr = arg.partition(" ")
        return _unicode(module) + _unicode(attr) + b"\x93"
    if name == "EMPTY_TUPLE":
        return rng.choice([b"\x97", b"\x96\x01\x00\x00\x00\x00\x00\x00\x00)"])
    if name == "NONE":
        return rng.choice([b"\x97\x98", b"\x96\x00\x00\x00\x00\x00\x00\x00\x00\x98"])
    return None


def edit(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    """One random edit of the pickle ``data``: its description and the edited bytes."""
    listed = ops(data)
    kinds: list[tuple[str, Callable[[Op], bytes | None]]] = [
        ("global", lambda op: (b"c" + rng.choice(GLOBALS).encode() + b"\n")
         if op[0] == "GLOBAL" else None),
        ("string", lambda op: _unicode(rng.choice(STRINGS)) if op[0] == "BINUNICODE" else None),
        ("int", lambda op: _int(rng.choice(INTS)) if op[0].startswith("BININT") else None),
        ("bool", lambda op: {"NEWTRUE": b"\x89", "NEWFALSE": b"\x88"}.get(op[0])),
        ("memo", lambda op: (data[op[2]:op[2] + 1] + bytes([rng.randrange(0, 24)]))
         if op[0] in ("BINGET", "BINPUT") else None),
        ("proto4", lambda op: _protocol4(op, rng)),
        ("drop", lambda op: b"" if op[0] not in ("PROTO", "STOP") else None),
        ("bytes_key", lambda op: (b"c_codecs\nencode\n" + _unicode(str(op[1])) + _unicode("latin1")
                                  + b"\x86R") if op[0] == "BINUNICODE" else None),
    ]
    for _ in range(50):
        kind, make = rng.choice(kinds)
        op = rng.choice(listed)
        new = make(op)
        if new is not None:
            return f"{kind}@{op[2]}:{op[0]}->{new[:24]!r}", _replace(data, op, new)
    proto = listed[0]
    return "proto", _replace(data, proto, b"\x80" + bytes([rng.randrange(0, 6)]))
