"""Renames learned from the data: prefixes, inserted or dropped segments, token substitutions.

Candidates come from hashing, never from comparing all pairs: a prefix rule pairs keys whose
remainders are equal, a segment rule keys equal once one segment is dropped, a substitution keys
equal but for one segment (a wildcard bucket). Each learned step is then graded by its evidence:
how many keys it explains, how many different places, and whether the names are related at all.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from ckptdiff.rename_explain import ARBITRARY, KNOWN, LEXICAL, Step, Transform
from ckptdiff.rename_keys import KeyView, fit
from ckptdiff.rename_lexical import ABBREVIATION, GENERIC_LEAVES, INDEX, relation

# Learned prefixes that are well-known wrappers or container attributes.
KNOWN_PREFIXES = ("model.", "net.", "network.", "encoder.", "backbone.", "state_dict.")
MAX_PREFIX_SEGMENTS = 4
# A remainder or bucket shared by more keys than this says nothing about which key is which.
MAX_BUCKET = 32

Pair = tuple[KeyView, KeyView, Transform | None]


@dataclass
class Evidence:
    """What supports one learned step: its pairs, the distinct places, the best shared anchor."""

    pairs: list[Pair] = field(default_factory=list)
    misses: list[tuple[KeyView, KeyView]] = field(default_factory=list)
    contexts: set[str] = field(default_factory=set)
    anchors: int = 0

    @property
    def support(self) -> int:
        """How many source keys the step pairs."""
        return len({s.key for s, _, _ in self.pairs})

    def add(self, source: KeyView, target: KeyView, context: str, shared: Sequence[str]) -> None:
        """Record a pair that the step explains (or a near miss when shapes disagree)."""
        ok, transform = fit(source, target)
        if not ok:
            self.misses.append((source, target))
            return
        self.pairs.append((source, target, transform))
        self.contexts.add(context)
        self.anchors = max(self.anchors, sum(1 for t in shared if _anchor(t)))


def learn(sources: Sequence[KeyView], targets: Sequence[KeyView]) -> dict[Step, Evidence]:
    """Every single-edit step that relates a source key to a target key, with its evidence."""
    found: dict[Step, Evidence] = defaultdict(Evidence)
    _prefixes(sources, targets, found)
    _segments(sources, targets, found)
    _substitutions(sources, targets, found)
    return found


def grade(step: Step, evidence: Evidence) -> int | None:
    """The tier the evidence earns ``step``, or ``None`` when it is too weak to suggest."""
    support, anchors = evidence.support, evidence.anchors
    if support == 0:
        return None
    if step.kind == "prefix":
        source, target = step.source, step.target
        if _known_stack(source) and _known_stack(target):
            return KNOWN
        if source and target:
            if _related_prefixes(source, target):
                return LEXICAL
            return ARBITRARY if support >= 3 and (anchors >= 1 or support >= 4) else None
        return LEXICAL if anchors >= 2 or (support >= 2 and anchors >= 1) else None
    if step.kind == "segment":
        return LEXICAL if support >= 2 and anchors >= 1 else None
    related = relation(step.source, step.target)
    if related >= ABBREVIATION:
        return LEXICAL
    if related == INDEX or {step.source, step.target} <= GENERIC_LEAVES:
        return None
    return ARBITRARY if support >= 3 and len(evidence.contexts) >= 2 and anchors >= 1 else None


def _anchor(token: str) -> bool:
    return not token.isdigit() and token not in GENERIC_LEAVES


def _known_stack(prefix: str) -> bool:
    """True for a prefix made only of well-known container names (the empty prefix included)."""
    rest = prefix
    while rest:
        head = next((p for p in KNOWN_PREFIXES if rest.startswith(p)), None)
        if head is None:
            return False
        rest = rest[len(head):]
    return True


def _related_prefixes(source: str, target: str) -> bool:
    a, b = source.rstrip(".").split("."), target.rstrip(".").split(".")
    return len(a) == len(b) and all(x == y or relation(x, y) >= ABBREVIATION
                                    for x, y in zip(a, b, strict=True))


def _prefixes(sources: Sequence[KeyView], targets: Sequence[KeyView],
              found: dict[Step, Evidence]) -> None:
    by_rest: dict[tuple[str, ...], list[tuple[int, KeyView]]] = defaultdict(list)
    for view in targets:
        for cut in range(min(MAX_PREFIX_SEGMENTS, len(view.tokens) - 1) + 1):
            by_rest[view.tokens[cut:]].append((cut, view))
    for view in sources:
        for cut in range(min(MAX_PREFIX_SEGMENTS, len(view.tokens) - 1) + 1):
            rest = view.tokens[cut:]
            matches = by_rest.get(rest, ())
            if len(matches) > MAX_BUCKET:
                continue
            source_prefix = _joined(view.tokens[:cut])
            for target_cut, target in matches:
                target_prefix = _joined(target.tokens[:target_cut])
                if target_prefix != source_prefix and not _index_clash(
                        view.tokens[:cut], target.tokens[:target_cut]):
                    step = Step("prefix", source_prefix, target_prefix)
                    found[step].add(view, target, ".".join(rest), rest)


def _segments(sources: Sequence[KeyView], targets: Sequence[KeyView],
              found: dict[Step, Evidence]) -> None:
    for longer, shorter, is_source in ((sources, targets, True), (targets, sources, False)):
        index: dict[tuple[str, ...], list[KeyView]] = defaultdict(list)
        for view in shorter:
            index[view.tokens].append(view)
        for view in longer:
            tokens = view.tokens
            for cut in range(1, len(tokens) - 1):
                rest = tokens[:cut] + tokens[cut + 1:]
                matches = index.get(rest, ())
                if not matches or len(matches) > MAX_BUCKET:
                    continue
                segment = tokens[cut]
                step = Step("segment", segment, "") if is_source else Step("segment", "", segment)
                for other in matches:
                    source, target = (view, other) if is_source else (other, view)
                    found[step].add(source, target, ".".join(rest), rest)


def _substitutions(sources: Sequence[KeyView], targets: Sequence[KeyView],
                   found: dict[Step, Evidence]) -> None:
    buckets: dict[tuple[int, tuple[str, ...]], list[KeyView]] = defaultdict(list)
    for view in targets:
        for position in range(len(view.tokens)):
            buckets[(position, _wild(view.tokens, position))].append(view)
    for view in sources:
        for position in range(len(view.tokens)):
            wild = _wild(view.tokens, position)
            matches = buckets.get((position, wild), ())
            if len(matches) > MAX_BUCKET:
                continue
            for target in matches:
                a, b = view.tokens[position], target.tokens[position]
                if a != b and relation(a, b) != INDEX:
                    context = f"{position}:{'.'.join(wild)}"
                    shared = view.tokens[:position] + view.tokens[position + 1:]
                    found[Step("substitute", a, b)].add(view, target, context, shared)


def _index_clash(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """Prefixes that differ in an index (``layers.1.`` vs ``layers.0.``) are other layers."""
    return any(x != y and relation(x, y) == INDEX for x, y in zip(a, b, strict=False))


def _wild(tokens: tuple[str, ...], position: int) -> tuple[str, ...]:
    return tokens[:position] + ("*",) + tokens[position + 1:]


def _joined(tokens: tuple[str, ...]) -> str:
    return "".join(t + "." for t in tokens)
