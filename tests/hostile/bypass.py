"""The published scanner-bypass classes (2025-2026) as hostile files: ZIP confusion (two central
directories, an archive hidden in the comment, a local header that names another member than the
central directory), duplicate members, protocol-5 out-of-band buffers, and globals deny-list
scanners miss. Each file hides ``os.system`` (or an exotic global) where a scanner that reads the
archive one way would not look, and must be refused: by name of the global (exit 3), or in one
line naming the ambiguity. :mod:`tests.test_hostile_audit` reads them all under an audit hook.
"""

from __future__ import annotations

import struct

from tests.hostile import zips
from tests.hostile.asm import Asm
from tests.hostile.containers import STORAGES
from tests.hostile.files import Case, raw, state, zipped

from ckptdiff.errors import CorruptFileError, UnsafeContentError

_EOCD = b"PK\x05\x06"
# Globals that deny-list scanners have missed, each with arguments a real unpickler would use.
EXOTIC_GLOBALS: list[tuple[str, str, tuple[object, ...]]] = [
    ("runpy", "_run_code", ("import os", {})), ("pydoc", "locate", ("os.system",)),
    ("_posixsubprocess", "fork_exec", ()), ("site", "main", ()),
    ("atexit", "register", ("x",)), ("functools", "partial", ("x",)),
    ("operator", "attrgetter", ("system",)), ("torch.serialization", "load", ("x.pt",)),
    ("numpy", "load", ("x.npy", None, True)), ("builtins", "getattr", ("x", "join")),
    ("numpy.lib.npyio", "load", ("x.npy", None, True)), ("torch", "load", ("x.pt",)),
]


def evil_value(module: str = "os", name: str = "system", args: tuple[object, ...] = ("true",),
               protocol: int = 2) -> bytes:
    """Opcodes that push ``module.name(*args)``."""
    asm = Asm(protocol)
    asm.glob(module, name).tuple_(list(args)).op(b"R")
    return bytes(asm.out)


def evil_call(module: str = "os", name: str = "system", args: tuple[object, ...] = ("true",),
              protocol: int = 2) -> bytes:
    """A state dict ``{"w": tensor, "x": module.name(*args)}`` as a complete pickle."""
    key = bytes(Asm(protocol).text("x").out)
    return state(key + evil_value(module, name, args, protocol), protocol=protocol)


def _keyed(key: str, value: bytes) -> bytes:
    return bytes(Asm(5).text(key).out) + value


def members(data_pkl: bytes) -> list[tuple[str, bytes]]:
    """The members of a torch zip (``version`` included) around ``data_pkl``."""
    return [("archive/data.pkl", data_pkl), ("archive/byteorder", b"little"),
            ("archive/version", b"3\n"),
            *[(f"archive/data/{key}", bytes(size)) for key, size in STORAGES.items()]]


GOOD = zips.archive(members(state()))
EVIL = zips.archive(members(evil_call()))


def _central_start(data: bytes) -> int:
    return int(struct.unpack_from("<I", data, data.rfind(_EOCD) + 16)[0])


def two_central_directories() -> bytes:
    """The evil archive's members and directory, then the good archive's: the end record states
    the evil directory's offset (what miniz, torch's zip library, follows) while the directory
    that ends at the end record is the good one (what Python's ``zipfile`` follows)."""
    evil_start, good_start = _central_start(EVIL), _central_start(GOOD)
    evil_dir, good_dir = EVIL[evil_start:EVIL.rfind(_EOCD)], bytearray(
        GOOD[good_start:GOOD.rfind(_EOCD)])
    shift = evil_start - len(evil_dir)  # zipfile adds len(evil_dir) to the good offsets
    assert shift >= 0
    pos = good_dir.find(zips.CENTRAL)
    while pos >= 0:
        offset = struct.unpack_from("<I", good_dir, pos + 42)[0]
        struct.pack_into("<I", good_dir, pos + 42, offset + shift)
        pos = good_dir.find(zips.CENTRAL, pos + 4)
    body = EVIL[:evil_start] + GOOD[:good_start] + evil_dir + bytes(good_dir)
    end = bytearray(GOOD[GOOD.rfind(_EOCD):])
    struct.pack_into("<I", end, 16, evil_start + good_start)  # the evil directory's offset
    return body + bytes(end)


def archive_in_comment() -> bytes:
    """The good archive whose zip comment is the whole evil archive."""
    end = GOOD.rfind(_EOCD)
    return GOOD[:end + 20] + struct.pack("<H", len(EVIL)) + EVIL


def central_points_at_another_member() -> bytes:
    """``data.pkl``'s central entry points at the local header of ``evil.pkl`` (same length)."""
    data = zips.archive([*members(state()), ("archive/evil.pkl", evil_call())])
    return zips.patch_central(data, "archive/data.pkl", "offset",
                              zips.central_value(data, "archive/evil.pkl", "offset"))


_AMBIGUOUS = "zip readers disagree"
ZIP_CONFUSION_CASES = [
    Case("bypass-two-central-directories", raw("two.pt", two_central_directories),
         CorruptFileError, _AMBIGUOUS),
    Case("bypass-archive-in-comment", raw("comment.pt", archive_in_comment), CorruptFileError,
         _AMBIGUOUS),
    Case("bypass-archive-appended", raw("appended.pt", GOOD + EVIL), CorruptFileError,
         _AMBIGUOUS),
    Case("bypass-central-points-at-evil", raw("points.pt", central_points_at_another_member),
         CorruptFileError, "local zip header names 'archive/evil.pkl'|would end at byte"),
    Case("bypass-duplicate-data-pkl-evil-last", raw("dup.pt", zips.archive(
        [*members(state()), ("archive/data.pkl", evil_call())])), CorruptFileError,
        "names that zip readers can confuse"),
    Case("bypass-duplicate-storage", raw("dupstorage.pt", zips.archive(
        [*members(state()), ("archive/data/0", bytes(4096))])), CorruptFileError,
        "names that zip readers can confuse"),
    Case("bypass-duplicate-version", raw("dupversion.pt", zips.archive(
        [*members(state()), ("archive/version", b"99")])), CorruptFileError,
        "names that zip readers can confuse"),
]
_OOB = "out-of-band"
BUFFER_CASES = [
    Case("bypass-next-buffer", zipped(state(b"\x8c\x01x\x97", protocol=5)), CorruptFileError,
         _OOB),
    Case("bypass-readonly-next-buffer", zipped(state(b"\x8c\x01x\x97\x98", protocol=5)),
         CorruptFileError, _OOB),
    Case("bypass-next-buffer-hides-global", zipped(lambda: state(
        b"\x8c\x01x\x97", _keyed("y", evil_value(protocol=5)), protocol=5)),
        UnsafeContentError, r"\(os\.system\)"),
    Case("bypass-readonly-buffer-hides-global", zipped(lambda: state(
        b"\x8c\x01xC\x03abc\x98", _keyed("y", evil_value(protocol=5)), protocol=5)),
        UnsafeContentError, r"\(os\.system\)"),
]
GLOBAL_CASES = [
    Case(f"bypass-global-{module}.{name}", zipped(
        lambda m=module, n=name, a=args: evil_call(m, n, a)), UnsafeContentError,
        rf"\({module.replace('.', '[.]')}[.]{name}\)")
    for module, name, args in EXOTIC_GLOBALS
]
BYPASS_CASES = ZIP_CONFUSION_CASES + BUFFER_CASES + GLOBAL_CASES
