"""Strict JSON for safetensors headers and index files, plus one-line message helpers.

Python's ``json`` is laxer than the ``serde_json`` parser the safetensors library uses: it accepts
``NaN``/``Infinity``, numbers too large for a double, unpaired UTF-16 surrogate escapes and
duplicate keys. :func:`load_strict_json` refuses all of them, so a header that parses here is one
the library parses too, and every string can be written back out as UTF-8.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from ckptdiff.errors import CorruptFileError

# serde_json stops at 128 nested arrays/objects (it fails on the 128th level).
MAX_NESTING = 127


class _InvalidJson(Exception):
    """Raised from parser hooks; turned into a ``CorruptFileError`` by :func:`load_strict_json`."""


def quote(text: str, limit: int = 120) -> str:
    """``text`` as a JSON string literal for a one-line message (escaped, shortened)."""
    try:
        text.encode("utf-8")
        literal = json.dumps(text, ensure_ascii=False)
    except UnicodeEncodeError:
        literal = json.dumps(text)
    return literal if len(literal) <= limit else literal[: limit - 2] + '…"'


def describe(value: Any, limit: int = 60) -> str:
    """A short JSON rendering of ``value`` for messages."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def json_type(value: Any) -> str:
    """The JSON name of the type of a parsed value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def nesting_depth(value: Any) -> int:
    """How many arrays/objects deep ``value`` goes (0 for a scalar), without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Iterable[Any] = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth + 1)
        stack.extend((child, depth + 1) for child in children)
    return deepest


# A lone surrogate can only come from a \uD800-\uDFFF escape (strict UTF-8 decoding refuses raw
# ones), and an integer too big for a double needs 309+ digits: when the text has neither, the
# slow checks are skipped (a false match, e.g. inside a string, only costs time).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_LONG_DIGITS = re.compile(r"\d{300}")
# serde_json reads ``-0`` as the float -0.0, which no integer field takes; json reads it as 0.
_NEGATIVE_ZERO = re.compile(r"-0(?![\d.eE])")


def _unpaired_surrogate(document: Any) -> str | None:
    """The first string (key or value) that cannot be encoded as UTF-8, if any."""
    stack = [document]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return item
    return None


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _InvalidJson(f"duplicate key {quote(key)}")
            seen.add(key)
    return result


def _float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise _InvalidJson(f"number {text[:40]} is out of range")
    return value


def _int(text: str) -> int | float:
    try:
        value = int(text)
        float(value)  # serde_json reads integers beyond 64 bits as doubles
    except (OverflowError, ValueError):  # ValueError: more digits than Python converts
        raise _InvalidJson(f"number {text[:40]}… is out of range") from None
    if value == 0 and text.startswith("-"):
        return -0.0  # as serde_json reads it: a float, refused where an integer is expected
    return value


def _constant(name: str) -> Any:
    raise _InvalidJson(f"{name} is not a JSON value")


def load_strict_json(text: str, where: str) -> Any:
    """Parse ``text`` strictly; ``CorruptFileError("<where> is not valid JSON: …")`` otherwise."""
    try:
        document = json.loads(
            text, object_pairs_hook=_object, parse_float=_float, parse_constant=_constant,
            parse_int=(_int if _LONG_DIGITS.search(text) or _NEGATIVE_ZERO.search(text)
                       else None),
        )
        if _SURROGATE_ESCAPE.search(text):
            bad = _unpaired_surrogate(document)
            if bad is not None:
                raise _InvalidJson(f"string {quote(bad)} has an unpaired surrogate escape")
        return document
    except _InvalidJson as exc:
        message = str(exc)
    except json.JSONDecodeError as exc:
        message = f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    except RecursionError:
        message = "nested too deeply"
    raise CorruptFileError(f"{where} is not valid JSON: {message}")
