"""The report's long lists (findings, suggestions) as JSON rows, written without dicts.

``Report.to_json`` writes one row per finding: a 100,000-key diff has 200,000 of them, and
building each row's dict (``Finding.to_dict``) to hand it to the C encoder took over a second.
Here each row is assembled from the encodings of its values: a compact JSON object is exactly
its members' encodings joined by ``", "`` (``jsonlines.encode_row``'s separators), so the text
is the one ``encode_row(finding.to_dict())`` gives (the tests compare both). Values that repeat
(kinds, severities, notes, rules, one shape and dtype) are encoded once per call.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ckptdiff.jsonlines import encode_row, encode_string
from ckptdiff.rename.results import Suggestion

if TYPE_CHECKING:  # the report imports this module
    from ckptdiff.diffing.report import Finding, TensorSide

_LONG = 40  # longer strings are keys, rarely repeated: encoded without the memo


class _Values:
    """``encode_row`` of one value at a time, remembering the ones that repeat."""

    def __init__(self) -> None:
        self.strings: dict[str, str] = {}
        # Tensor sides by identity: findings share them (``match.key_findings``), and every
        # one stays alive, so no identity is reused, while the rows are written.
        self.sides: dict[int, str] = {}

    def text(self, value: object) -> str:
        """A string (or None, or anything ``encode_row`` writes)."""
        if type(value) is not str:
            return "null" if value is None else encode_row(value)
        if len(value) > _LONG:
            return encode_string(value)
        found = self.strings.get(value)
        if found is None:
            found = self.strings[value] = encode_string(value)
        return found

    def side(self, side: TensorSide | None) -> str:
        """A tensor side (or None)."""
        if side is None:
            return "null"
        found = self.sides.get(id(side))
        if found is None:
            found = self.sides[id(side)] = encode_row(side.to_dict())
        return found


def finding_rows(findings: Sequence[Finding]) -> list[str]:
    """``encode_row(f.to_dict())`` of each finding."""
    values = _Values()
    text, side = values.text, values.side
    rows = []
    for f in findings:
        row = (f'{{"kind": {text(f.kind)}, "key": {text(f.key)}, '
               f'"severity": {text(f.severity)}, "source": {side(f.source)}, '
               f'"target": {side(f.target)}, "note": {text(f.note)}, '
               f'"tied_to": {text(f.tied_to)}')
        if f.names is not None:
            row += f', "names": {{"source": {text(f.names[0])}, "target": {text(f.names[1])}}}'
        rows.append(row + "}")
    return rows


def suggestion_rows(suggestions: Sequence[Suggestion]) -> list[str]:
    """``encode_row(s.to_dict())`` of each suggestion."""
    text = _Values().text
    confidences: dict[float, str] = {}
    rows = []
    for s in suggestions:
        # Only positive floats share a memo entry: 1 == 1.0 and 0.0 == -0.0 print differently.
        memo = type(s.confidence) is float and s.confidence > 0
        confidence = confidences.get(s.confidence) if memo else None
        if confidence is None:
            confidence = encode_row(round(s.confidence, 4))
            if memo:
                confidences[s.confidence] = confidence
        axes = "null" if s.axes is None else encode_row(list(s.axes))
        rows.append(f'{{"source_key": {text(s.source_key)}, "target_key": {text(s.target_key)}, '
                    f'"confidence": {confidence}, "rule": {text(s.rule)}, '
                    f'"transform": {text(s.transform)}, "axes": {axes}}}')
    return rows
