"""Fold keys into the patterns people read: ``encoder.layer.{0..11}.attention.{query,key}.weight``.

Folding is exact: a folded pattern stands for precisely the keys that went into it (the
cartesian product of its alternatives), never more.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from ckptdiff.diffing.report import Suggestion
from ckptdiff.graph.fold import index_pattern

_SEPARATORS = re.compile(r"([./])")


@dataclass
class _Node:
    segments: list[tuple[str, ...]]  # alternatives per segment, first-seen order
    separators: tuple[str, ...]
    first: int


def fold(keys: Sequence[str]) -> list[tuple[str, list[int]]]:
    """Fold ``keys`` into patterns; each with the indices of the keys it covers, input order."""
    nodes: list[_Node] = []
    members: list[list[int]] = []
    for index, key in enumerate(keys):
        parts = _SEPARATORS.split(key)
        nodes.append(_Node(list(zip(parts[0::2])), tuple(parts[1::2]), index))  # 1-tuples
        members.append([index])
    for numeric_pass in (True, False):
        changed = True
        while changed:
            changed = False
            width = max((len(n.segments) for n in nodes), default=0)
            for position in range(width):
                nodes, members, merged = _merge_at(nodes, members, position, numeric_pass)
                changed = changed or merged
    order = sorted(range(len(nodes)), key=lambda i: nodes[i].first)
    return [(_pattern(nodes[i]), sorted(members[i])) for i in order]


def _merge_at(nodes: list[_Node], members: list[list[int]], position: int,
              numeric_pass: bool) -> tuple[list[_Node], list[list[int]], bool]:
    buckets: dict[Hashable, int] = {}
    out_nodes: list[_Node] = []
    out_members: list[list[int]] = []
    # The alternatives gathered at ``position`` per merged node, as a dict (first-seen order,
    # constant-time membership): appending to a tuple re-scanned and re-copied it per key, so
    # 10,000 layers folded in quadratic time.
    gathered: dict[int, dict[str, None]] = {}
    for node, member in zip(nodes, members, strict=True):
        segments = node.segments
        if position >= len(segments) or (numeric_pass and not _all_digits(segments[position])):
            out_nodes.append(node)
            out_members.append(member)
            continue
        rest = tuple(segments[:position] + segments[position + 1:])
        bucket_key = (len(node.segments), position, node.separators, rest)
        slot = buckets.get(bucket_key)
        if slot is not None:
            target = out_nodes[slot]
            seen = gathered.get(slot)
            if seen is None:
                seen = gathered[slot] = dict.fromkeys(target.segments[position])
            seen.update(dict.fromkeys(node.segments[position]))
            target.first = min(target.first, node.first)
            out_members[slot].extend(member)
        else:
            buckets[bucket_key] = len(out_nodes)
            out_nodes.append(_Node(list(node.segments), node.separators, node.first))
            out_members.append(list(member))
    for slot, seen in gathered.items():
        out_nodes[slot].segments[position] = tuple(seen)
    return out_nodes, out_members, bool(gathered)


def _all_digits(values: tuple[str, ...]) -> bool:
    # (one alternative, the usual case, without a generator per key and position)
    return values[0].isdigit() if len(values) == 1 else all(v.isdigit() for v in values)


def _pattern(node: _Node) -> str:
    out = [_alternatives(node.segments[0])]
    for separator, segment in zip(node.separators, node.segments[1:], strict=True):
        out.append(separator)
        out.append(_alternatives(segment))
    return "".join(out)


def _alternatives(values: tuple[str, ...]) -> str:
    if len(values) == 1:
        return values[0]
    if all(v.isdigit() for v in values):
        return index_pattern(values)
    return "{" + ",".join(values) + "}"


def by_rule(suggestions: tuple[Suggestion, ...]) -> dict[str, list[Suggestion]]:
    """Suggestions grouped by their rule text, first appearance first."""
    grouped: dict[str, list[Suggestion]] = {}
    for suggestion in suggestions:
        grouped.setdefault(suggestion.rule, []).append(suggestion)
    return grouped


def folded_pairs(members: list[Suggestion], limit: int = 2) -> list[str]:
    """``module.layer.{0..11}.weight → layer.{0..11}.weight`` lines for a group of suggestions."""
    sources = fold([s.source_key for s in members])
    targets = fold([s.target_key for s in members])
    if [i for _, i in sources] == [i for _, i in targets]:  # each pattern pair is exact
        lines = [f"{a} → {b}" for (a, _), (b, _) in zip(sources, targets, strict=True)]
    else:  # the two sides fold differently: the source patterns, the rules say the rest
        lines = [a for a, _ in sources]
    if len(lines) > limit:
        lines = [*lines[:limit], f"… {len(lines) - limit} more patterns"]
    return lines
