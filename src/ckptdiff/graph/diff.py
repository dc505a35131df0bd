"""The diff as a tree: the union of both key sets, each key marked with what the report says.

A key is ``matched``, ``renamed`` (an unexpected source key or a missing target key that a
suggestion pairs up), or the kind of its worst finding (``missing``, ``unexpected``, ``shape``,
``dtype``, ``device``, ``optimizer``, …). A key only one side has and no finding mentions was
dropped by ``--ignore``: it is ``ignored``. Built from the report plus both manifests; without the
manifests (a bare report) the tree holds only the keys findings mention.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field

from ckptdiff.diffing.report import SEVERITIES, Finding, Report, Suggestion, TensorSide
from ckptdiff.graph.fold import fold_tree
from ckptdiff.graph.tree import Summaries, TreeNode, build_tree, quiet_gc
from ckptdiff.manifest import Manifest

# Display order: the statuses that break loading first, the quiet ones last.
STATUS_ORDER = ("renamed", "missing", "unexpected", "shape", "dtype", "device", "optimizer",
                "matched", "ignored")
_KIND_RANK = {kind: rank for rank, kind in enumerate(STATUS_ORDER)}


@dataclass(frozen=True)
class DiffLeaf:
    """One key of the union: both sides, its findings, and its status."""

    key: str
    source: TensorSide | None
    target: TensorSide | None
    findings: tuple[Finding, ...]
    status: str
    severity: str | None  # worst finding severity; None when nothing was found
    partner: str | None = None  # renamed: the key on the other side of the suggestion
    rule: str | None = None

    @property
    def ok(self) -> bool:
        """True when nothing here needs attention (matched, ignored, or info-level only)."""
        return self.severity is None or self.severity == "info"


def _worst(findings: Iterable[Finding]) -> Finding:
    return min(findings, key=lambda f: (SEVERITIES.index(f.severity),
                                        _KIND_RANK.get(f.kind, len(STATUS_ORDER))))


def diff_leaf(key: str, source: TensorSide | None, target: TensorSide | None,
              findings: tuple[Finding, ...], suggestion: Suggestion | None) -> DiffLeaf:
    """The leaf of ``key``; ``suggestion`` is the rename pairing it up, if any."""
    if not findings:
        status = "matched" if source is not None and target is not None else "ignored"
        return DiffLeaf(key, source, target, findings, status, None)
    worst = _worst(findings)
    if suggestion is not None and worst.kind in ("missing", "unexpected"):
        partner = suggestion.target_key if worst.kind == "unexpected" else suggestion.source_key
        return DiffLeaf(key, source, target, findings, "renamed", worst.severity, partner,
                        suggestion.rule)
    return DiffLeaf(key, source, target, findings, worst.kind, worst.severity)


@quiet_gc()
def diff_leaves(report: Report, source: Manifest | None = None,
                target: Manifest | None = None) -> list[DiffLeaf]:
    """One leaf per key of the union (target order, then source-only keys in source order).

    Without manifests only the keys findings mention are there.
    """
    by_key: dict[str, list[Finding]] = {}
    for finding in report.findings:
        by_key.setdefault(finding.key, []).append(finding)
    renames: dict[str, Suggestion] = {}
    for suggestion in report.suggestions:
        renames.setdefault(suggestion.source_key, suggestion)
        renames.setdefault(suggestion.target_key, suggestion)
    keys: dict[str, None] = {}
    for manifest in (target, source):
        if manifest is not None:
            keys.update(dict.fromkeys(manifest.keys()))
    keys.update(dict.fromkeys(by_key))
    leaves = []
    for key in keys:
        findings = tuple(by_key.get(key, ()))
        src = _side(key, source, findings, "source")
        tgt = _side(key, target, findings, "target")
        leaves.append(diff_leaf(key, src, tgt, findings, renames.get(key)))
    return leaves


def _side(key: str, manifest: Manifest | None, findings: tuple[Finding, ...],
          which: str) -> TensorSide | None:
    if manifest is not None:
        return TensorSide.of(manifest.by_key.get(key))
    return next((getattr(f, which) for f in findings if getattr(f, which) is not None), None)


def leaf_signature(leaf: DiffLeaf) -> Hashable:
    """What must agree for two layers to fold: status, sides, rename rule (not the partner key)."""
    return (leaf.status, leaf.severity, leaf.source, leaf.target, leaf.rule,
            tuple((f.kind, f.severity, f.tied_to is not None) for f in leaf.findings))


_SEVERITY_RANK = {"error": 0, "warning": 1, "info": 2, None: 3}


@dataclass(frozen=True)
class DiffSummary:
    """A subtree of the diff: keys per status, the worst severity, the rename rules in it."""

    counts: dict[str, int]
    worst: str | None
    rules: frozenset[str | None]  # a key that is not renamed adds None; at most two kept

    @classmethod
    def of(cls, leaf: DiffLeaf) -> DiffSummary:
        """The summary of one key."""
        return cls({leaf.status: 1}, leaf.severity,
                   frozenset({leaf.rule if leaf.status == "renamed" else None}))

    @classmethod
    def merge(cls, parts: list[DiffSummary]) -> DiffSummary:
        """The summary of several subtrees."""
        if len(parts) == 1:
            return parts[0]
        counts: dict[str, int] = {}
        rules: set[str | None] = set()
        worst: str | None = None
        for part in parts:
            for status, n in part.counts.items():
                counts[status] = counts.get(status, 0) + n
            if _SEVERITY_RANK[part.worst] < _SEVERITY_RANK[worst]:
                worst = part.worst
            if len(rules) < 2:
                rules.update(part.rules)
        return cls(counts, worst, frozenset(sorted(rules, key=str)[:2]))

    @property
    def ok(self) -> bool:
        """True when nothing below needs attention (matched, ignored, info-level only)."""
        return self.worst in (None, "info")

    @property
    def single_rule(self) -> str | None:
        """The rule when every key below is renamed by that one rule, else ``None``."""
        return next(iter(self.rules)) if len(self.rules) == 1 else None


@dataclass
class DiffTree:
    """The union tree of a diff, folded, with a summary per node."""

    report: Report
    root: TreeNode[DiffLeaf]
    complete: bool  # False when built from the report alone (matched keys absent)
    summary: Summaries[DiffLeaf, DiffSummary] = field(
        default_factory=lambda: Summaries(DiffSummary.of, DiffSummary.merge), repr=False)

    def counts(self, node: TreeNode[DiffLeaf]) -> Counter[str]:
        """Keys per status below ``node`` (every member of a folded group)."""
        return Counter(self.summary(node).counts)

    def is_ok(self, node: TreeNode[DiffLeaf]) -> bool:
        """True when nothing below ``node`` needs attention: such a subtree stays collapsed."""
        return self.summary(node).ok


def diff_tree(report: Report, source: Manifest | None = None,
              target: Manifest | None = None) -> DiffTree:
    """The folded union tree of ``report`` (over ``source`` and ``target`` when given)."""
    leaves = diff_leaves(report, source, target)
    root = fold_tree(build_tree((leaf.key, leaf) for leaf in leaves), leaf_signature)
    return DiffTree(report, root, source is not None and target is not None)


def ordered_counts(counts: Counter[str]) -> list[tuple[str, int]]:
    """``(status, n)`` in display order, statuses this module does not know at the end."""
    return sorted(counts.items(), key=lambda item: (_KIND_RANK.get(item[0], len(STATUS_ORDER) - 2),
                                                    item[0]))
