"""Renames learned from the data: prefixes, inserted or dropped segments, token substitutions.

Candidates come from hashing, never from comparing all pairs: a prefix rule pairs keys whose
remainders are equal, a segment rule keys equal once one segment is dropped, a substitution keys
equal but for one segment (a wildcard bucket). Each learned step is then graded by its evidence:
how many keys it explains, how many different places, and whether the names are related at all.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from ckptdiff.rename.explain import ARBITRARY, KNOWN, LEXICAL, Step, Transform
from ckptdiff.rename.keys import KeyView, fit
from ckptdiff.rename.lexical import ABBREVIATION, GENERIC_LEAVES, INDEX, relation

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
    modules: set[tuple[str, ...]] = field(default_factory=set)  # distinct parents in the rests
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
        self.modules.add(tuple(shared[:-1]))
        self.anchors = max(self.anchors, sum(1 for t in shared if _anchor(t)))


def learn(sources: Sequence[KeyView], targets: Sequence[KeyView],
          focus: tuple[set[str], set[str]] | None = None) -> dict[Step, Evidence]:
    """Every single-edit step that relates a source key to a target key, with its evidence.

    ``focus`` (tokens only sources have, tokens only targets have) limits dropped segments and
    substitutions to those tokens: how large pools stay fast, since a consistent rename makes
    its old name vanish from the targets and its new name from the sources.
    """
    found: dict[Step, Evidence] = defaultdict(Evidence)
    source_only, target_only = focus if focus is not None else (None, None)
    _prefixes(sources, targets, found)
    # Views holding a token of the focus, once for both kinds of step.
    sources_in, targets_in = _relevant(sources, source_only), _relevant(targets, target_only)
    _segments(sources, targets, sources_in, targets_in, found, source_only, target_only)
    _substitutions(sources_in, targets_in, found, source_only, target_only)
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
            # Unrelated names: only a rename seen along a real path, or over a whole subtree of
            # several modules, counts (one BatchNorm's four same-shaped statistics would match
            # any other BatchNorm of that width).
            spread = anchors >= 1 or len(evidence.modules) >= 2
            return ARBITRARY if support >= 3 and spread else None
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


Variants = Callable[[KeyView], Iterator[tuple[str, int]]]


def _meet(sources: Sequence[KeyView], targets: Sequence[KeyView], source_variants: Variants,
          target_variants: Variants) -> Iterator[tuple[KeyView, int, KeyView, int]]:
    """Pairs whose variants meet: the (small) sources are indexed, the targets stream past."""
    index: dict[str, list[tuple[KeyView, int]]] = defaultdict(list)
    for view in sources:
        for key, where in source_variants(view):
            index[key].append((view, where))
    hits: dict[str, list[tuple[KeyView, int]]] = defaultdict(list)
    if target_variants is _whole:  # the common stream, without a generator per target
        for view in targets:
            if view.canonical in index:
                hits[view.canonical].append((view, -1))
    else:
        for view in targets:
            for key, where in target_variants(view):
                if key in index:
                    hits[key].append((view, where))
    for key, found in hits.items():
        mine = index[key]
        if len(found) > MAX_BUCKET or len(mine) > MAX_BUCKET:
            continue  # shared by too many keys: says nothing about which is which
        for source, source_where in mine:
            for target, target_where in found:
                yield source, source_where, target, target_where


def _offsets(view: KeyView) -> list[int]:
    """Where each canonical segment starts in ``view.canonical``."""
    offsets, at = [], 0
    for token in view.tokens:
        offsets.append(at)
        at += len(token) + 1
    return offsets


def _whole(view: KeyView) -> Iterator[tuple[str, int]]:
    yield view.canonical, -1


def _dropped(only: set[str] | None) -> Variants:
    """Variants of views that hold a token of ``only`` (see :func:`_relevant`)."""
    def variants(view: KeyView) -> Iterator[tuple[str, int]]:
        offsets, text = _offsets(view), view.canonical
        for cut in range(1, len(view.tokens) - 1):
            if only is None or view.tokens[cut] in only:
                yield text[:offsets[cut]] + text[offsets[cut + 1]:], cut
    return variants


def _wildcards(only: set[str] | None) -> Variants:
    """Variants of views that hold a token of ``only`` (see :func:`_relevant`)."""
    def variants(view: KeyView) -> Iterator[tuple[str, int]]:
        offsets, text = _offsets(view), view.canonical
        for position, token in enumerate(view.tokens):
            if only is None or token in only:
                at = offsets[position]
                yield f"{position}\x00{text[:at]}\x00{text[at + len(token):]}", position
    return variants


def _relevant(views: Sequence[KeyView], only: set[str] | None) -> Sequence[KeyView]:
    """The views holding a token of ``only`` (all of them when ``only`` is ``None``)."""
    return views if only is None else [v for v in views if not only.isdisjoint(v.tokens)]


def _prefixes(sources: Sequence[KeyView], targets: Sequence[KeyView],
              found: dict[Step, Evidence]) -> None:
    # Keys by what follows a prefix of up to MAX_PREFIX_SEGMENTS segments, as token tuples (no
    # string slicing): at 100k targets this loop is the hot one.
    index: dict[tuple[str, ...], list[tuple[KeyView, int]]] = defaultdict(list)
    for view in sources:
        tokens = view.tokens
        for cut in range(min(MAX_PREFIX_SEGMENTS, len(tokens) - 1) + 1):
            index[tokens[cut:]].append((view, cut))
    hits: dict[tuple[str, ...], list[tuple[KeyView, int]]] = defaultdict(list)
    for view in targets:
        tokens = view.tokens
        for cut in range(min(MAX_PREFIX_SEGMENTS, len(tokens) - 1) + 1):
            if tokens[cut:] in index:
                hits[tokens[cut:]].append((view, cut))
    for rest, found_targets in hits.items():
        mine = index[rest]
        if len(found_targets) > MAX_BUCKET or len(mine) > MAX_BUCKET:
            continue
        rest_text = ".".join(rest)
        for view, cut in mine:
            for target, target_cut in found_targets:
                if cut and target_cut and view.tokens[cut - 1] == target.tokens[target_cut - 1]:
                    continue  # a shorter prefix pair explains it (keep rules minimal)
                if cut == target_cut == 0 or _index_clash(view.tokens[:cut],
                                                          target.tokens[:target_cut]):
                    continue
                step = Step("prefix", _joined(view.tokens[:cut]),
                            _joined(target.tokens[:target_cut]))
                found[step].add(view, target, rest_text, view.tokens[cut:])


def _segments(sources: Sequence[KeyView], targets: Sequence[KeyView],
              sources_in: Sequence[KeyView], targets_in: Sequence[KeyView],
              found: dict[Step, Evidence], source_only: set[str] | None,
              target_only: set[str] | None) -> None:
    for view, cut, target, _ in _meet(sources_in, targets, _dropped(source_only), _whole):
        rest = view.tokens[:cut] + view.tokens[cut + 1:]
        found[Step("segment", view.tokens[cut], "")].add(view, target, ".".join(rest), rest)
    for view, _, target, cut in _meet(sources, targets_in, _whole, _dropped(target_only)):
        rest = target.tokens[:cut] + target.tokens[cut + 1:]
        found[Step("segment", "", target.tokens[cut])].add(view, target, ".".join(rest), rest)


def _substitutions(sources: Sequence[KeyView], targets: Sequence[KeyView],
                   found: dict[Step, Evidence], source_only: set[str] | None,
                   target_only: set[str] | None) -> None:
    pairs = _meet(sources, targets, _wildcards(source_only), _wildcards(target_only))
    for view, position, target, _ in pairs:
        a, b = view.tokens[position], target.tokens[position]
        if a != b and relation(a, b) != INDEX:
            shared = view.tokens[:position] + view.tokens[position + 1:]
            context = f"{position}:{'.'.join(shared)}"
            found[Step("substitute", a, b)].add(view, target, context, shared)


def _index_clash(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """Prefixes that differ in an index (``layers.1.`` vs ``layers.0.``) are other layers."""
    return any(x != y and relation(x, y) == INDEX for x, y in zip(a, b, strict=False))


def _joined(tokens: tuple[str, ...]) -> str:
    return "".join(t + "." for t in tokens)
