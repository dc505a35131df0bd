"""Rename rules as a file (``remap --rules``): write the ones a diff found, or apply saved ones.

Format (``ckptdiff.rules/1``)::

    {"schema": "ckptdiff.rules/1",
     "rules": [{"pattern": "^module\\\\.", "replacement": "", "matches": 188}],
     "transforms": {"fc.weight": [1, 0]},
     "conversions": [{"sources": ["l.0.attn.Wqkv.weight"], "targets": ["l.0.q.weight", …],
                      "ops": [{"op": "chunk", "dim": 0, "parts": 3, "sizes": [16, 16, 16]}]}]}

``rules`` apply in order with ``re.sub`` to every key (mmengine's ``revise_keys``); ``transforms``
reorder the dimensions of the tensor that ends up under a key (numpy ``transpose`` axes);
``conversions`` (optional; the report's ``conversions`` entries) make target tensors of source
tensors by their ``ops``, keys as stored and as the target names them. A written file carries the
diff's conversions; a user states one the diff declined as ambiguous (a fused ``Wqkv`` known to be
blocked) by adding it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ckptdiff.diffing.report import Report, Rule
from ckptdiff.errors import CkptdiffError, CorruptFileError
from ckptdiff.rename.results import Conversion, ConversionOp

RULES_SCHEMA = "ckptdiff.rules/1"


@dataclass(frozen=True)
class RulesFile:
    """Ordered rename rules and per-key dimension reorders."""

    rules: tuple[Rule, ...]
    transforms: dict[str, tuple[int, ...]]
    conversions: tuple[Conversion, ...] = ()

    def rename(self, key: str) -> str:
        """``key`` after every rule, in order."""
        for rule in self.rules:
            key = re.sub(rule.pattern, rule.replacement, key)
        return key

    def to_json(self) -> str:
        """The file's text."""
        document: dict[str, Any] = {
            "schema": RULES_SCHEMA, "rules": [r.to_dict() for r in self.rules],
            "transforms": {k: list(v) for k, v in self.transforms.items()}}
        if self.conversions:
            document["conversions"] = [c.to_dict() for c in self.conversions]
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def from_report(report: Report) -> RulesFile:
    """The rules and transforms of a diff's suggestions, and its conversions."""
    transforms = {s.target_key: s.axes for s in report.suggestions if s.axes is not None}
    return RulesFile(report.rules, transforms, report.conversions)


def load(path: Path) -> RulesFile:
    """Read and check a rules file; a ``CkptdiffError`` naming the path when it is not one."""
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CkptdiffError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise CorruptFileError(f"{path}: not JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("schema") != RULES_SCHEMA:
        raise CorruptFileError(f"{path}: not a {RULES_SCHEMA} document")
    try:
        rules = tuple(Rule(str(r["pattern"]), str(r["replacement"]), int(r.get("matches", 0)))
                      for r in data.get("rules", []))
        transforms = {str(k): tuple(int(a) for a in v)
                      for k, v in dict(data.get("transforms", {})).items()}
        conversions = tuple(_conversion(c) for c in data.get("conversions", []))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CorruptFileError(f"{path}: invalid rules: {exc}") from None
    for rule in rules:
        try:
            re.compile(rule.pattern)
            re.sub(rule.pattern, rule.replacement, "")
        except (re.error, IndexError) as exc:
            raise CorruptFileError(f"{path}: rule {rule.pattern!r} → {rule.replacement!r}: "
                                   f"{exc}") from None
    for key, axes in transforms.items():
        if sorted(axes) != list(range(len(axes))):
            raise CorruptFileError(f"{path}: transform of {key!r}: {list(axes)} is not a "
                                   "permutation of the dimensions")
    return RulesFile(rules, transforms, conversions)


_OPS = ("concat", "stack", "chunk", "transpose")


def _conversion(entry: dict[str, Any]) -> Conversion:
    """One ``conversions`` entry (a ``ValueError``/``KeyError`` when malformed)."""
    ops = []
    for op in entry["ops"]:
        if op["op"] not in _OPS:
            raise ValueError(f"unknown conversion op {op['op']!r} (one of {', '.join(_OPS)})")
        sizes, dims = op.get("sizes"), op.get("dims")
        ops.append(ConversionOp(
            str(op["op"]), None if op.get("dim") is None else int(op["dim"]),
            None if op.get("parts") is None else int(op["parts"]),
            None if sizes is None else tuple(int(x) for x in sizes), op.get("per"),
            None if dims is None else (int(dims[0]), int(dims[1]))))
    sources = tuple(str(k) for k in entry["sources"])
    targets = tuple(str(k) for k in entry["targets"])
    if not sources or not targets or not ops:
        raise ValueError("a conversion needs sources, targets and ops")
    return Conversion(sources, targets, tuple(ops), float(entry.get("confidence", 1.0)),
                      str(entry.get("rule", "stated in the rules file")))
