"""Walking unpickled containers: flattening nested dicts/lists, key paths, optimizer state dicts.

The walks are iterative and bounded: a pickle can share one dict under many keys (or make a dict
contain itself), so a container is counted once however often it is shared, a value that
expands to more than :data:`MAX_VISITS` tensors or nests deeper than :data:`MAX_DEPTH` is
refused before it is flattened, and keys are spelled out within a character budget. Text taken
from a pickle is made writable as UTF-8, and integers too long to print are not written as
numbers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Generic, TypeGuard, TypeVar

from ckptdiff.errors import CorruptFileError
from ckptdiff.readers import safety
from ckptdiff.readers.safety import json_int, shown, utf8_text

T = TypeVar("T")

MAX_DEPTH = safety.MAX_CONTAINER_DEPTH
MAX_VISITS = safety.MAX_CONTAINER_VISITS


MAX_BYTES_KEY = 512


def key_text(key: object) -> str:
    """A dict key as manifest text (ints for optimizer state ids; bytes keys spelled ``b'w'``)."""
    if isinstance(key, str):
        return utf8_text(key)
    if isinstance(key, int) and not isinstance(key, bool) and json_int(key) is None:
        return f"<int of {key.bit_length()} bits>"  # str() refuses ints of 4,300+ digits
    if isinstance(key, (bool, int, float)) or key is None:
        return str(key)
    if isinstance(key, bytes):  # spelled as Python does: load_state_dict never matches b"w" to w
        return repr(key[:MAX_BYTES_KEY])
    return f"<{type(key).__name__}>"  # no repr: it could hold an address and vary between runs


def entries(value: object) -> list[tuple[str, object]]:
    """The (key text, value) pairs of a dict or a list/tuple (indices as keys); else none."""
    if isinstance(value, dict):
        return [(key_text(k), v) for k, v in value.items()]
    if isinstance(value, (list, tuple)):
        return [(str(i), v) for i, v in enumerate(value)]
    return []


class Walker(Generic[T]):
    """Counts and flattens the tensors under a value.

    Counting is memoized per container, so a container shared many times over costs one visit:
    a pickle of a few kilobytes can describe 2**40 paths, which are refused by their count
    before any is spelled out. Flattening then visits only containers that hold tensors, and
    spells keys within :data:`~ckptdiff.readers.safety.MAX_KEY_CHARS` each and
    :data:`~ckptdiff.readers.safety.MAX_KEY_CHARS_TOTAL` in all.
    """

    def __init__(self, is_tensor: Callable[[object], TypeGuard[T]], path: str) -> None:
        self.is_tensor = is_tensor
        self.path = path
        self._counts: dict[int, int] = {}  # container id -> tensors below it, with repeats
        self._heights: dict[int, int] = {}  # container id -> levels of containers below it
        self._distinct: set[int] = set()  # ids of the tensors met while counting
        self._key_chars = 0

    def flatten(self, value: object, prefix: str) -> list[tuple[str, T]]:
        """Every tensor under ``value`` with its ``.``-joined key, in stored order."""
        total = self.count(value)
        # Tied weights and a state dict saved twice repeat tensors a few times; more is a bomb.
        allowed = max(safety.MAX_TENSOR_REPEATS * len(self._distinct),
                      safety.MAX_REPEATED_TENSORS_FLOOR)
        if total > min(MAX_VISITS, allowed):
            raise CorruptFileError(
                f"{self.path}: the checkpoint expands to more than {min(MAX_VISITS, allowed):,} "
                f"entries from {len(self._distinct):,} tensors (containers shared many times "
                "over)")
        return list(self._walk(value, prefix))

    def count(self, value: object) -> int:
        """How many tensors are under ``value`` (a tensor shared under two keys counts twice)."""
        if self.is_tensor(value):
            return 1
        if not isinstance(value, (dict, list, tuple)):
            return 0
        if id(value) not in self._counts:
            self._count_below(value)
        return self._counts[id(value)]

    def _count_below(self, value: object) -> None:
        # Iterative post-order: a container met again before it is finished contains itself.
        started: set[int] = set()
        stack: list[tuple[object, bool, int]] = [(value, False, 0)]
        while stack:
            item, finished, depth = stack.pop()
            ident = id(item)
            if finished:
                self._finish(item)
                started.discard(ident)
            elif ident in started or depth > MAX_DEPTH:  # refused on the way down
                self._too_deep()
            elif ident not in self._counts:
                started.add(ident)
                stack.append((item, True, depth))
                stack.extend((child, False, depth + 1) for child in self._containers(item)
                             if id(child) not in self._counts)

    def _containers(self, item: object) -> list[object]:
        return [v for _, v in entries(item)
                if isinstance(v, (dict, list, tuple)) and not self.is_tensor(v)]

    def _finish(self, item: object) -> None:
        children = self._containers(item)
        tensors = [id(v) for _, v in entries(item) if self.is_tensor(v)]
        self._distinct.update(tensors)
        self._counts[id(item)] = len(tensors) + sum(self._counts[id(c)] for c in children)
        height = 1 + max((self._heights[id(c)] for c in children), default=0)
        if height > MAX_DEPTH:
            self._too_deep()
        self._heights[id(item)] = height

    def _too_deep(self) -> None:
        raise CorruptFileError(f"{self.path}: containers nest more than {MAX_DEPTH} levels deep "
                               "(a container that contains itself?)")

    def check_unique(self, keys: list[str]) -> None:
        """Refuse two tensors that flatten to the same key (``{"a.b": t, "a": {"b": t}}``)."""
        seen: set[str] = set()
        for key in keys:
            if key in seen:
                raise CorruptFileError(
                    f"{self.path}: two tensors flatten to the key {shown(key)!r}")
            seen.add(key)

    def _walk(self, value: object, prefix: str) -> Iterator[tuple[str, T]]:
        stack: list[tuple[str, object]] = [(prefix, value)]
        while stack:
            key, item = stack.pop()
            if self.is_tensor(item):
                self._check_key(len(key))
                yield key, item
                continue
            stack.extend((self._join(key, name), child) for name, child in reversed(entries(item))
                         if self.count(child))

    def _join(self, key: str, name: str) -> str:
        if not key:
            return name
        self._check_key(len(key) + 1 + len(name))
        return f"{key}.{name}"

    def _check_key(self, size: int) -> None:
        self._key_chars += size
        if size > safety.MAX_KEY_CHARS:
            raise CorruptFileError(f"{self.path}: a key path is longer than "
                                   f"{safety.MAX_KEY_CHARS:,} characters")
        if self._key_chars > safety.MAX_KEY_CHARS_TOTAL:
            raise CorruptFileError(
                f"{self.path}: the checkpoint's keys add up to more than "
                f"{safety.MAX_KEY_CHARS_TOTAL:,} characters (containers shared many times over)")


def resolve(root: object, key: str) -> tuple[list[str], object] | None:
    """Follow ``key`` into nested dicts: a top-level key as is, else a ``.``/``/`` path whose
    segments may themselves contain dots (``{"a": {"b.c": ...}}`` answers ``a.b.c``)."""
    for name, value in entries(root):
        if name == key:
            return [name], value
    segments = [s for s in re.split(r"[./]", key) if s]
    return _follow(root, segments, 0) if segments else None


def _follow(value: object, segments: list[str], depth: int) -> tuple[list[str], object] | None:
    if not segments:
        return [], value
    if depth > MAX_DEPTH:
        return None
    children = dict(reversed(entries(value)))
    for cut in range(len(segments), 0, -1):
        name = ".".join(segments[:cut])
        if name in children:
            found = _follow(children[name], segments[cut:], depth + 1)
            if found is not None:
                return [name, *found[0]], found[1]
    return None
