"""Edits between two keys at the level of segments, and the regexes that perform them.

An edit replaces, deletes or inserts whole segments (``module.`` deleted at the start,
``gamma`` → ``weight`` at the end, ``2`` → ``3`` in the middle). It is described by a signature
that is the same wherever the edit happens — what a reusable rule is — and performed either by a
generic regex (``^module\\.``) or by a template anchored on the whole key whose varying segments
are generalized (``^(encoder\\.layer\\.\\d+\\.)gamma$``).
"""

from __future__ import annotations

import difflib
import re
from functools import lru_cache
from typing import NamedTuple

_SEPARATOR = re.compile(r"[./]")
_MASK = str.maketrans("0123456789", "##########")
_PIECES = re.compile(r"([./])")
MAX_ALTERNATIVES = 64


class Signature(NamedTuple):
    """What an edit does, independent of the key it is in."""

    kind: str  # "sub", "del" or "ins"
    where: str  # "start", "end", "middle" or "whole"
    removed: str  # source text the edit removes (separators it takes included)
    inserted: str  # text it puts in its place
    before: str  # the separator just before the removed text ("" at the start)
    after: str  # the separator just after it (only for "sub" in the middle)


class Edit(NamedTuple):
    """One edit inside one key: the characters ``start:end`` become ``signature.inserted``."""

    start: int
    end: int
    signature: Signature


def edits(source: str, target: str) -> list[Edit]:
    """The segment edits that turn ``source`` into ``target`` (same separators assumed)."""
    if source == target:
        return []
    cut = len(source) - len(target)
    if cut > 0 and source.endswith(target) and source[cut - 1] in "./":  # a stripped prefix
        return _prefix_edit(source[:cut], True)
    if cut < 0 and target.endswith(source) and target[-cut - 1] in "./":  # an added prefix
        return _prefix_edit(target[:-cut], False)
    if "/" in source or "/" in target:
        return _edits(source, target)
    first_a, first_b = source.find("."), target.find(".")
    if (first_a > 0 and first_b > 0 and source[first_a:] == target[first_b:]
            and source[:first_a] != target[:first_b]):
        return _first_segment_edit(source[:first_a], target[:first_b])  # a replaced prefix
    leaf = _leaf_change(source, target)
    if leaf is not None:
        return leaf
    # Segments shared at both ends never change: the edits of the middle are cached, so keys
    # that differ the same way (layer after layer) cost one split.
    a, b = source.split("."), target.split(".")
    shortest = min(len(a), len(b))
    head = 0
    while head < shortest and a[head] == b[head]:
        head += 1
    tail = 0
    while tail < shortest - head and a[-1 - tail] == b[-1 - tail]:
        tail += 1
    text_a = ".".join(a[head:len(a) - tail])
    text_b = ".".join(b[head:len(b) - tail])
    masked_a, masked_b = text_a.translate(_MASK), text_b.translate(_MASK)
    if masked_a != text_a or masked_b != text_b:
        # Layer after layer differs only in its index: edits computed with digits masked
        # (same lengths, so offsets hold) serve every layer, checked before they are used.
        middle = _middle_edits(masked_a, masked_b, bool(head), bool(tail))
        found = _shifted(middle, a, head)
        if not any("#" in e.signature.removed or "#" in e.signature.inserted for e in middle) \
                and apply(source, found) == target:
            return found
    return _shifted(_middle_edits(text_a, text_b, bool(head), bool(tail)), a, head)


def _leaf_change(source: str, target: str) -> list[Edit] | None:
    """A renamed leaf (``gamma`` → ``weight``), alone or with a prefix stripped or added
    (``module.…gamma`` → ``…weight``): what the general case finds, directly.

    With a prefix, only when the prefix's segments occur nowhere in the other key (digits
    masked): then the token alignment can only keep the rest together.
    """
    dot_s, dot_t = source.rfind("."), target.rfind(".")
    if not (0 < dot_s < len(source) - 1 and 0 < dot_t < len(target) - 1):
        return None
    leaf = Edit(dot_s + 1, len(source),
                Signature("sub", "end", source[dot_s + 1:], target[dot_t + 1:], ".", ""))
    cut = dot_s - dot_t
    if cut == 0:
        return [leaf] if source[:dot_s] == target[:dot_t] else None
    if cut > 0:
        if not (source.endswith(target[:dot_t], 0, dot_s) and source[cut - 1] == "."):
            return None
        prefix, other = source[:cut], target
    else:
        if not (target.endswith(source[:dot_s], 0, dot_t) and target[-cut - 1] == "."):
            return None
        prefix, other = target[:-cut], source
    head = prefix[:-1]
    if head.translate(_MASK) != head:  # digits: compare as the alignment does, masked
        head, other = head.translate(_MASK), other.translate(_MASK)
    if not set(head.split(".")).isdisjoint(other.split(".")):
        return None  # (a segment without digits equals a masked one only unmasked)
    if cut > 0:
        return [Edit(0, cut, Signature("del", "start", prefix, "", "", "")), leaf]
    return [Edit(0, 0, Signature("ins", "start", "", prefix, "", "")), leaf]


def _shifted(middle: list[Edit], tokens: list[str], head: int) -> list[Edit]:
    if not head:
        return middle  # shared with other keys: callers never mutate edit lists
    base = len(".".join(tokens[:head])) + 1
    return [Edit(base + start, base + end, sig) for start, end, sig in middle]


@lru_cache(maxsize=4096)
def _middle_edits(source: str, target: str, head: bool, tail: bool) -> list[Edit]:
    """Edits between two middles, as if shared segments stood before (``head``)/after them."""
    lead = "h." if head else ""
    trail = ".t" if tail else ""
    if not source:  # the middle is inserted: lead and trail meet
        full_source = "h.t" if head and tail else (lead[:-1] or trail[1:])
    else:
        full_source = lead + source + trail
    full_target = lead + target + trail if target else "h.t" if head and tail else (
        lead[:-1] or trail[1:])
    return [Edit(e.start - len(lead), e.end - len(lead), e.signature)
            for e in _edits(full_source, full_target)]


def _edits(source: str, target: str) -> list[Edit]:
    s_spans, t_spans = _spans(source), _spans(target)
    s_tokens = tuple(source[a:b] for a, b in s_spans)
    t_tokens = tuple(target[a:b] for a, b in t_spans)
    return [_edit(source, s_spans, target, t_spans, i1, i2, j1, j2)
            for i1, i2, j1, j2 in _opcodes(s_tokens, t_tokens)]


@lru_cache(maxsize=1024)
def _first_segment_edit(old: str, new: str) -> list[Edit]:
    """The one edit of a replaced first segment (shared: callers never mutate it)."""
    return [Edit(0, len(old), Signature("sub", "start", old, new, "", "."))]


@lru_cache(maxsize=1024)
def _prefix_edit(prefix: str, stripped: bool) -> list[Edit]:
    """The one edit of a stripped or added prefix (shared: callers never mutate it)."""
    if stripped:
        return [Edit(0, len(prefix), Signature("del", "start", prefix, "", "", ""))]
    return [Edit(0, 0, Signature("ins", "start", "", prefix, "", ""))]


def apply(text: str, chosen: list[Edit]) -> str:
    """``text`` with the ``chosen`` edits performed (they never overlap)."""
    if len(chosen) == 1:
        edit = chosen[0]
        return text[:edit.start] + edit.signature.inserted + text[edit.end:]
    for edit in sorted(chosen, key=lambda e: e.start, reverse=True):
        text = text[:edit.start] + edit.signature.inserted + text[edit.end:]
    return text


def generic_regex(sig: Signature) -> tuple[str, str] | None:
    """The context-free rule of an edit, or ``None`` when it needs context (a middle insert)."""
    removed, inserted = re.escape(sig.removed), _literal(sig.inserted)
    if sig.where == "whole":
        return f"^{removed}$", inserted
    if sig.where == "start":
        after = re.escape(sig.after)
        return f"^{removed}{after}", inserted + sig.after
    if sig.where == "end":
        return f"{re.escape(sig.before)}{removed}$", sig.before + inserted
    if sig.kind == "ins":
        return None
    return (f"{re.escape(sig.before)}{removed}{re.escape(sig.after)}",
            sig.before + inserted + sig.after)


def template_regex(sig: Signature, keys: list[tuple[str, Edit]], exact: bool,
                   whole: bool) -> tuple[str, str] | None:
    """One anchored rule for the edit in all ``keys`` (text, edit), generalizing what varies.

    The left context (from the key's start) is always part of the pattern; the right context
    only when ``whole`` (anchored at both ends).
    """
    left = _generalize([text[:edit.start] for text, edit in keys], exact)
    right = _generalize([text[edit.end:] for text, edit in keys], exact) if whole else ""
    if left is None or right is None:
        return None
    pattern, replacement, group = "^", "", 0
    if left and (left != re.escape(keys[0][0][:keys[0][1].start]) or right):
        group += 1
        pattern += f"({left})"
        replacement += f"\\g<{group}>"
    elif left:
        pattern += left
        replacement += _literal(keys[0][0][:keys[0][1].start])
    pattern += re.escape(sig.removed)
    replacement += _literal(sig.inserted)
    if right:
        group += 1
        pattern += f"({right})$"
        replacement += f"\\g<{group}>"
    elif whole or sig.where in ("end", "whole"):
        pattern += "$"
    else:
        pattern += re.escape(sig.after)
        replacement += _literal(sig.after)
    return pattern, replacement


def _literal(text: str) -> str:
    """``text`` safe as a ``re.sub`` replacement."""
    return text.replace("\\", "\\\\")


def layout(text: str) -> tuple[str, ...]:
    """The separators of ``text`` in order: keys with one layout generalize together."""
    return tuple(_SEPARATOR.findall(text))


def _generalize(texts: list[str], exact: bool) -> str | None:
    if not texts[0]:
        return "" if all(not t for t in texts) else None
    split = [_PIECES.split(t) for t in texts]
    if any(len(parts) != len(split[0]) for parts in split):
        return None
    out: list[str] = []
    for position, values in enumerate(zip(*split, strict=True)):
        distinct = sorted(set(values))
        if len(distinct) == 1:
            out.append(re.escape(distinct[0]))
        elif position % 2:  # separators must agree
            return None
        elif exact:
            if len(distinct) > MAX_ALTERNATIVES:
                return None
            out.append("(?:" + "|".join(re.escape(v) for v in distinct) + ")")
        elif all(v.isdigit() for v in distinct):
            out.append(r"\d+")
        else:
            out.append(r"[^./]+")
    return "".join(out)


def _spans(text: str) -> list[tuple[int, int]]:
    spans, start = [], 0
    for part in (_SEPARATOR.split(text) if "/" in text else text.split(".")):
        spans.append((start, start + len(part)))
        start += len(part) + 1
    return spans


def _opcodes(a: tuple[str, ...], b: tuple[str, ...]) -> list[tuple[int, int, int, int]]:
    if len(a) == len(b):  # one substitution per differing segment
        return [(i, i + 1, i, i + 1) for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
    head = 0
    while head < min(len(a), len(b)) and a[head] == b[head]:
        head += 1
    tail = 0
    while tail < min(len(a), len(b)) - head and a[-1 - tail] == b[-1 - tail]:
        tail += 1
    middle = _middle_opcodes(a[head:len(a) - tail], b[head:len(b) - tail])
    return [(head + i1, head + i2, head + j1, head + j2) for i1, i2, j1, j2 in middle]


@lru_cache(maxsize=4096)
def _middle_opcodes(a: tuple[str, ...], b: tuple[str, ...]) -> list[tuple[int, int, int, int]]:
    if not a or not b:
        return [(0, len(a), 0, len(b))]
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    return [(i1, i2, j1, j2) for tag, i1, i2, j1, j2 in matcher.get_opcodes() if tag != "equal"]


def _edit(source: str, s_spans: list[tuple[int, int]], target: str,
          t_spans: list[tuple[int, int]], i1: int, i2: int, j1: int, j2: int) -> Edit:
    n = len(s_spans)
    new = target[t_spans[j1][0]:t_spans[j2 - 1][1]] if j2 > j1 else ""
    if i2 > i1 and j2 > j1:  # substitution
        start, end = s_spans[i1][0], s_spans[i2 - 1][1]
        where = "whole" if i1 == 0 and i2 == n else "start" if i1 == 0 else (
            "end" if i2 == n else "middle")
        before = source[start - 1] if start else ""
        after = source[end] if end < len(source) else ""
        sig = Signature("sub", where, source[start:end], new, before if where in (
            "end", "middle") else "", after if where in ("start", "middle") else "")
        return Edit(start, end, sig)
    if i2 > i1:  # deletion
        if i1 == 0:
            start, end = 0, s_spans[i2][0]
            return Edit(start, end, Signature("del", "start", source[start:end], "", "", ""))
        if i2 == n:
            start, end = s_spans[i1 - 1][1], len(source)
            return Edit(start, end, Signature("del", "end", source[start:end], "", "", ""))
        start, end = s_spans[i1][0], s_spans[i2][0]
        return Edit(start, end, Signature("del", "middle", source[start:end], "",
                                          source[start - 1], ""))
    if i1 == 0:  # insertion
        inserted = new + target[t_spans[j2 - 1][1]]
        return Edit(0, 0, Signature("ins", "start", "", inserted, "", ""))
    if i1 == n:
        inserted = target[t_spans[j1][0] - 1] + new
        return Edit(len(source), len(source), Signature("ins", "end", "", inserted, "", ""))
    at = s_spans[i1][0]
    inserted = new + target[t_spans[j2 - 1][1]]
    return Edit(at, at, Signature("ins", "middle", "", inserted, source[at - 1], ""))
