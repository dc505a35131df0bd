"""Rename rules as a file (``remap --rules``): write the ones a diff found, or apply saved ones.

Format (``ckptdiff.rules/1``)::

    {"schema": "ckptdiff.rules/1",
     "rules": [{"pattern": "^module\\\\.", "replacement": "", "matches": 188}],
     "transforms": {"fc.weight": [1, 0]},
     "conversions": [{"sources": ["l.0.attn.Wqkv.weight"], "targets": ["l.0.q.weight", …],
                      "ops": [{"op": "chunk", "dim": 0, "parts": 3, "sizes": [16, 16, 16]}]}]}

``rules`` apply in order with ``re.sub`` to every key (mmengine's ``revise_keys``); ``transforms``
reorder the dimensions of the tensor that ends up under a key (numpy ``transpose`` axes; a
conversion's target after its ops);
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
from ckptdiff.fix.rules_conversions import conversion, whole_number
from ckptdiff.rename.results import Conversion

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
    """The rules and transforms of a diff's suggestions, and its conversions.

    A transform is written only for a key the rules rename to: applied, a transform of a key no
    tensor ends up under is refused (a suggestion the rules cannot reach stays a suggestion).
    """
    plan = RulesFile(report.rules, {}, report.conversions)
    transforms = {s.target_key: s.axes for s in report.suggestions
                  if s.axes is not None and plan.rename(s.source_key) == s.target_key}
    return RulesFile(report.rules, transforms, report.conversions)


def load(path: Path) -> RulesFile:
    """Read and check a rules file; a ``CkptdiffError`` naming the path when it is not one.

    Every entry is checked here, so that none is silently ignored: an unknown field, a
    conversion op lacking what it needs or given what it does not take (the error names the
    conversion by its first target), a transform that is not a permutation.
    """
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CkptdiffError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise CorruptFileError(f"{path}: not JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("schema") != RULES_SCHEMA:
        raise CorruptFileError(f"{path}: not a {RULES_SCHEMA} document")
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise CorruptFileError(f"{path}: unknown field {unknown[0]!r} (one of "
                               f"{', '.join(sorted(_FIELDS))})")
    rules = tuple(_rule(path, r) for r in _listed(path, data, "rules"))
    transforms = data.get("transforms", {})
    if not isinstance(transforms, dict):
        raise CorruptFileError(f"{path}: transforms must map keys to axes, not {transforms!r}")
    axes_of = {str(k): _axes(path, str(k), v) for k, v in transforms.items()}
    conversions = []
    for entry in _listed(path, data, "conversions"):
        try:
            conversions.append(conversion(entry))
        except ValueError as exc:
            first = entry.get("targets") if isinstance(entry, dict) else None
            label = (f"conversion making {first[0]!r}" if isinstance(first, list) and first
                     else "a conversion")
            raise CorruptFileError(f"{path}: {label}: {exc}") from None
    return RulesFile(rules, axes_of, tuple(conversions))


_FIELDS = {"schema", "rules", "transforms", "conversions"}


def _listed(path: Path, data: dict[str, Any], field: str) -> list[Any]:
    value = data.get(field, [])
    if not isinstance(value, list):
        raise CorruptFileError(f"{path}: {field} must be a list, not {value!r}")
    return value


def _rule(path: Path, entry: Any) -> Rule:
    """One ``rules`` entry: a pattern that compiles and a replacement that fits it."""
    if (not isinstance(entry, dict) or not isinstance(entry.get("pattern"), str)
            or not isinstance(entry.get("replacement"), str)
            or set(entry) - {"pattern", "replacement", "matches"}):
        raise CorruptFileError(f"{path}: a rule must be {{\"pattern\", \"replacement\"}} "
                               f"strings (and \"matches\"), not {entry!r}")
    rule = Rule(entry["pattern"], entry["replacement"], 0)
    try:
        rule = Rule(rule.pattern, rule.replacement,
                    whole_number(entry.get("matches", 0), "matches"))
        re.sub(rule.pattern, rule.replacement, "")  # compiles both
    except (re.error, IndexError, ValueError) as exc:
        raise CorruptFileError(f"{path}: rule {rule.pattern!r} → {rule.replacement!r}: "
                               f"{exc}") from None
    return rule


def _axes(path: Path, key: str, value: Any) -> tuple[int, ...]:
    if (not isinstance(value, list) or not all(type(a) is int for a in value)
            or sorted(value) != list(range(len(value)))):
        raise CorruptFileError(f"{path}: transform of {key!r}: {value!r} is not a "
                               "permutation of the dimensions")
    return tuple(value)
