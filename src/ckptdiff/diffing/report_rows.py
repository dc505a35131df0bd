"""The report's long lists (findings, suggestions) as JSON rows, written without dicts.

``Report.to_json`` writes one row per finding: a 100,000-key diff has 200,000 of them, and
building each row's dict (``Finding.to_dict``) to hand it to the C encoder took over a second.
Here each row is assembled from the encodings of its values: a compact JSON object is exactly
its members' encodings joined by ``", "`` (``jsonlines.encode_row``'s separators), so the text
is the one ``encode_row(finding.to_dict())`` gives (the tests compare both). Values that repeat
(everything after the key, mostly: kinds, severities, notes, rules, shapes) are encoded once
per call.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ckptdiff.jsonlines import encode_row, encode_string
from ckptdiff.rename.results import Suggestion

if TYPE_CHECKING:  # the report imports this module
    from ckptdiff.diffing.report import Finding, TensorSide


def _text(value: object) -> str:
    """A string (or None, or anything else as ``encode_row`` writes it)."""
    if type(value) is str:
        return encode_string(value)
    return "null" if value is None else encode_row(value)


class _Sides:
    """Tensor sides, each encoded once. By identity: findings share them (``TensorSide.of``),
    and every one stays alive, so no identity is reused, while the rows are written."""

    def __init__(self) -> None:
        self.encoded: dict[int, str] = {}

    def __call__(self, side: TensorSide | None) -> str:
        if side is None:
            return "null"
        found = self.encoded.get(id(side))
        if found is None:
            found = self.encoded[id(side)] = encode_row(side.to_dict())
        return found


def finding_rows(findings: Sequence[Finding]) -> list[str]:
    """``encode_row(f.to_dict())`` of each finding."""
    text, side = _text, _Sides()
    heads: dict[str, str] = {}
    # Everything after the key, by what it is written from: most findings share theirs.
    tails: dict[tuple[object, ...], str] = {}
    rows = []
    for f in findings:
        head = heads.get(f.kind)
        if head is None:
            head = heads[f.kind] = f'{{"kind": {text(f.kind)}, "key": '
        facts = (f.severity, id(f.source), id(f.target), f.note, f.tied_to, f.names)
        tail = tails.get(facts)
        if tail is None:
            tail = (f', "severity": {text(f.severity)}, "source": {side(f.source)}, '
                    f'"target": {side(f.target)}, "note": {text(f.note)}, '
                    f'"tied_to": {text(f.tied_to)}')
            if f.names is not None:
                tail += (f', "names": {{"source": {text(f.names[0])}, '
                         f'"target": {text(f.names[1])}}}')
            tail = tails[facts] = tail + "}"
        key = f.key
        rows.append(head + (encode_string(key) if type(key) is str else text(key)) + tail)
    return rows


def suggestion_rows(suggestions: Sequence[Suggestion]) -> list[str]:
    """``encode_row(s.to_dict())`` of each suggestion."""
    text, encode = _text, encode_string
    # Everything after the keys, by what it is written from. Only positive float confidences
    # share an entry: 1 == 1.0 and 0.0 == -0.0, but each prints differently.
    tails: dict[tuple[object, ...], str] = {}
    rows = []
    for s in suggestions:
        shared = type(s.confidence) is float and s.confidence > 0
        facts = (s.confidence, s.rule, s.transform, s.axes)
        tail = tails.get(facts) if shared else None
        if tail is None:
            axes = "null" if s.axes is None else encode_row(list(s.axes))
            tail = (f', "confidence": {encode_row(round(s.confidence, 4))}, '
                    f'"rule": {text(s.rule)}, "transform": {text(s.transform)}, '
                    f'"axes": {axes}}}')
            if shared:
                tails[facts] = tail
        source, target = s.source_key, s.target_key
        rows.append(f'{{"source_key": {encode(source) if type(source) is str else text(source)}, '
                    f'"target_key": {encode(target) if type(target) is str else text(target)}'
                    f'{tail}')
    return rows
