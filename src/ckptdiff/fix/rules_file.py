"""Rename rules as a file (``remap --rules``): write the ones a diff found, or apply saved ones.

Format (``ckptdiff.rules/1``)::

    {"schema": "ckptdiff.rules/1",
     "rules": [{"pattern": "^module\\\\.", "replacement": "", "matches": 188}],
     "transforms": {"fc.weight": [1, 0]}}

``rules`` apply in order with ``re.sub`` to every key (mmengine's ``revise_keys``); ``transforms``
reorder the dimensions of the tensor that ends up under a key (numpy ``transpose`` axes).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ckptdiff.diffing.report import Report, Rule
from ckptdiff.errors import CkptdiffError, CorruptFileError

RULES_SCHEMA = "ckptdiff.rules/1"


@dataclass(frozen=True)
class RulesFile:
    """Ordered rename rules and per-key dimension reorders."""

    rules: tuple[Rule, ...]
    transforms: dict[str, tuple[int, ...]]

    def rename(self, key: str) -> str:
        """``key`` after every rule, in order."""
        for rule in self.rules:
            key = re.sub(rule.pattern, rule.replacement, key)
        return key

    def to_json(self) -> str:
        """The file's text."""
        document = {"schema": RULES_SCHEMA, "rules": [r.to_dict() for r in self.rules],
                    "transforms": {k: list(v) for k, v in self.transforms.items()}}
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def from_report(report: Report) -> RulesFile:
    """The rules and transforms of a diff's suggestions."""
    transforms = {s.target_key: s.axes for s in report.suggestions if s.axes is not None}
    return RulesFile(report.rules, transforms)


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
    return RulesFile(rules, transforms)
