"""A seeded mutation fuzzer over every reader's committed fixtures (testdata/readers/*/cases.json).

Each :class:`Target` is one conformance case and one of its files (the file the case truncates,
and for folder checkpoints every other file beside it). :func:`mutants` yields damaged versions
of that file: truncations at spread and random offsets, bit flips, bytes set to boundary values,
length-like fields set to huge or negative numbers, chunks deleted, duplicated or inserted.
:func:`run` applies them in a scratch copy of the case and records what each read gave: a
manifest, a :class:`~ckptdiff.errors.CkptdiffError`, or anything else (a crash: a bug).
"""

from __future__ import annotations

import json
import random
import shutil
import struct
import time
import traceback
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import ckptdiff.readers as registry
from ckptdiff.errors import CkptdiffError

TESTDATA = Path(__file__).resolve().parents[2] / "testdata" / "readers"
_BOUNDARY = (0x00, 0xFF, 0x7F, 0x80, 0x01, 0xFE)
_WIDE = (2**31 - 1, 2**32 - 1, 2**63 - 1, 2**64 - 1, 2**62, 0, 1)


@dataclass(frozen=True)
class Target:
    """Read ``read_path`` (relative to the case folder) after damaging ``victim`` in it."""

    family: Path
    read_path: str
    victim: str
    key: str | None

    @property
    def name(self) -> str:
        return f"{self.family.name}/{self.read_path}:{self.victim}"


def targets() -> list[Target]:
    """Every conformance case, once per file worth damaging."""
    found: list[Target] = []
    for cases in sorted(TESTDATA.glob("*/cases.json")):
        for case in json.loads(cases.read_text()):
            family = cases.parent
            victims = {case.get("truncate") or case["path"]}
            main = family / str(next(iter(victims)))
            if main.parent != family:  # a folder checkpoint: its other files too
                victims |= {str(p.relative_to(family)) for p in main.parent.rglob("*")
                            if p.is_file() and not p.name.endswith(".golden.json")}
            found.extend(Target(family, case["path"], v, case.get("key")) for v in sorted(victims)
                         if (family / v).is_file())
    return found


def mutants(data: bytes, count: int, rng: random.Random) -> Iterator[tuple[str, bytes]]:
    """``count`` damaged versions of ``data``: about a third truncations, the rest edits."""
    size = len(data)
    cuts = sorted({0, 1, 7, 8, 9, size // 2, size - 1} | {size * n // 32 for n in range(32)})
    cuts = [c for c in cuts if 0 <= c < size]
    made = 0
    for cut in cuts[:count // 3]:
        yield f"truncate@{cut}", data[:cut]
        made += 1
    while made < count:
        yield _edit(data, rng)
        made += 1


def _edit(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    blob = bytearray(data)
    kind = rng.randrange(7)
    where = rng.randrange(len(blob)) if blob else 0
    if kind == 0:
        bits = rng.randint(1, 8)
        for _ in range(bits):
            spot = rng.randrange(len(blob))
            blob[spot] ^= 1 << rng.randrange(8)
        return f"flip{bits}bits@{where}", bytes(blob)
    if kind == 1:
        value = rng.choice(_BOUNDARY)
        blob[where:where + 1] = bytes([value])
        return f"set@{where}={value:#x}", bytes(blob)
    if kind == 2:
        width, value = rng.choice((4, 8)), rng.choice(_WIDE)
        fmt = "<I" if width == 4 else "<Q"
        blob[where:where + width] = struct.pack(fmt, value & (2**(8 * width) - 1))
        return f"wide@{where}={value}", bytes(blob)
    if kind == 3:
        length = rng.randint(1, 64)
        del blob[where:where + length]
        return f"delete@{where}+{length}", bytes(blob)
    if kind == 4:
        length = rng.randint(1, 64)
        blob[where:where] = blob[where:where + length]
        return f"duplicate@{where}+{length}", bytes(blob)
    if kind == 5:
        length = rng.randint(1, 16)
        blob[where:where] = bytes(rng.randrange(256) for _ in range(length))
        return f"insert@{where}+{length}", bytes(blob)
    length = rng.randint(1, 32)
    blob[where:where + length] = bytes(rng.randrange(256) for _ in range(length))
    return f"scramble@{where}+{length}", bytes(blob)


@dataclass
class Tally:
    """What a fuzzing run saw."""

    inputs: int = 0
    manifests: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    crashes: list[str] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)


def check(path: Path, key: str | None) -> str:
    """Read ``path``; returns ``manifest`` or the error class; raises on anything else."""
    try:
        manifest = registry.read(path, key)
    except CkptdiffError as exc:
        message = str(exc)
        # It names the path read, or the file inside the checkpoint that is broken (a shard).
        folder = path if path.is_dir() else path.parent
        if "\n" in message or not message.startswith((str(path), str(folder))):
            raise AssertionError(f"not a one-line message naming the path: {message!r}") from None
        return type(exc).__name__
    json.dumps(manifest.to_dict(), ensure_ascii=False).encode("utf-8")
    return "manifest"


def run(target: Target, count: int, seed: int, scratch: Path,
        each: Callable[[str, float], None] | None = None) -> Tally:
    """Read ``count`` mutants of ``target`` in a copy of its case under ``scratch``."""
    work = scratch / f"{target.family.name}-{zlib.crc32(target.name.encode()):08x}"
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(target.family, work, symlinks=True,
                    ignore=shutil.ignore_patterns("*.golden.json", "*.py"))
    victim = work / target.victim
    original = victim.read_bytes()
    tally = Tally()
    rng = random.Random(f"{seed}:{target.name}")
    for description, data in mutants(original, count, rng):
        victim.write_bytes(data)
        start = time.perf_counter()
        try:
            result = check(work / target.read_path, target.key)
        except Exception:  # a crash: anything but a manifest or a CkptdiffError
            result = "crash"
            tally.crashes.append(f"{target.name} {description} (seed {seed}): "
                                 + traceback.format_exc().strip().splitlines()[-1])
        elapsed = time.perf_counter() - start
        tally.inputs += 1
        tally.seconds.append(elapsed)
        if result == "manifest":
            tally.manifests += 1
        elif result != "crash":
            tally.errors[result] = tally.errors.get(result, 0) + 1
        if each is not None:
            each(result, elapsed)
    victim.write_bytes(original)
    return tally
