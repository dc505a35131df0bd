"""The rename engine's stages, strongest evidence first; each assigns before the next one runs.

1. Known conventions: keys equal once wrappers, legacy and framework names are normalized.
2. Learned renames (up to three rounds, so that learned steps compose): prefixes, segments and
   substitutions graded by their evidence; large pools learn from a sample and then rewrite all.
3. Shifted indices: order-preserving block alignment by shape.
4. Cross-framework layers that no name explains: pairing by kind, order and shape.
5. The field's vocabulary and block order, for renames too few keys support (:mod:`blocks`).
6. One inserted or dropped segment, the rest identical, alike in every block (:mod:`segments`).
7. (After the conversions) renames too weak alone that the conversions' paths confirm.
8. (Last) leftover pairs: the one open pair of a shape side by side, named alike, where nothing
   else stays missing (:mod:`leftovers`, run by :mod:`plan` on the keys conversions left).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from itertools import chain

from ckptdiff.rename.align import align, indexed
from ckptdiff.rename.assign import Candidate
from ckptdiff.rename.blocks import vocabulary_pairs
from ckptdiff.rename.conventions import meta_feed_forward
from ckptdiff.rename.explain import (
    ARBITRARY,
    KNOWN,
    Step,
    Transform,
    known_confidence,
    learned_confidence,
    merge_parts,
    ordered,
)
from ckptdiff.rename.keys import KeyView, fit, make_view, rewritten
from ckptdiff.rename.learn import grade, learn
from ckptdiff.rename.segments import segment_pairs
from ckptdiff.rename.session import Session
from ckptdiff.rename.structure import structure

# Candidates by the hundred thousand: built without NamedTuple's slower keyword-aware __new__.
_new_candidate = tuple.__new__
ROUNDS = 3
SAMPLE = 3000  # source keys that learning looks at per round; all keys are then rewritten
FOCUS = 20_000  # beyond this many open keys, learn renames of vanished/new tokens only


def known_stage(session: Session) -> None:
    """Pairs whose canonical keys are equal."""
    session.commit(_exact(session, session.open_sources(), learnable=False))


def learned_stage(session: Session) -> None:
    """Learn steps from the open keys, pair, rewrite what is left with them, repeat."""
    views = session.open_sources(learnable=True)
    for _ in range(ROUNDS):
        targets = session.open_targets(learnable=True)
        if not views or not targets:
            return
        stride = max(1, -(-len(views) // SAMPLE))
        focus = None
        if len(views) + len(targets) > FOCUS:
            source_tokens = set(chain.from_iterable([v.tokens for v in views]))
            target_tokens = set(chain.from_iterable([v.tokens for v in targets]))
            focus = (source_tokens - target_tokens, target_tokens - source_tokens)
        evidence = learn(views[::stride], targets, focus)
        graded: dict[Step, tuple[int, float, int]] = {}
        for step, found in evidence.items():
            tier = grade(step, found)
            if tier is None:
                session.weak(step, [(s, t) for s, t, _ in found.pairs], found.support)
                continue
            confidence = 0.99 if tier >= KNOWN else learned_confidence(tier, found.support)
            graded[step] = (tier, confidence, found.support)
            for s, t in found.misses:
                session.near_miss(s, t, _steps(s, t, step), None)
        session.accepted.update(graded)
        session.graded.clear()  # grades may have changed
        # A sample's pairs come back through the rewrite below, except inserted segments.
        candidates = [_candidate(session, s, t, step, transform)
                      for step in graded if stride == 1 or step.kind == "segment"
                      for s, t, transform in evidence[step].pairs]
        rewrite = Rewriter(session.accepted)
        views = [rewrite(v) for v in views]
        candidates += _exact(session, [v for v in views if v.learned], learnable=True)
        session.commit(candidates)
        views = [v for v in views if v.key not in session.used_sources and v.learned]
        if not graded:
            return


def align_stage(session: Session) -> None:
    """Whole blocks moved to other indices (inserted or removed layers)."""
    open_sources = {v.key for v in session.open_sources() if indexed(v)}
    open_targets = {v.key for v in session.open_targets() if indexed(v)}
    if not open_sources or not open_targets:
        return  # no open key sits in a numbered container: nothing can have shifted
    expected = {info.key: info for info in session.target_all}
    fitting = {i.key for i in session.source_all
               if i.key in expected and expected[i.key].shape == i.shape}
    rewrite = Rewriter(session.accepted)
    sources = [rewrite(make_view(info)) for info in session.source_all]
    targets = [make_view(info) for info in session.target_all]
    session.commit(align(sources, targets, open_sources, open_targets, session.used_sources,
                         session.used_targets, fitting))


def structure_stage(session: Session) -> None:
    """Cross-framework layers paired by kind, order and shape."""
    session.commit(structure(session.open_sources(learnable=True),
                             session.open_targets(learnable=True)))


def vocabulary_stage(session: Session) -> None:
    """Renames the field's naming vocabulary establishes, consistently in every block."""
    sources, targets = session.open_sources(learnable=True), session.open_targets(learnable=True)
    if not sources or not targets:
        return
    # (Meta's w1/w2/w3 need their siblings, paired or not; only the open keys' modules are read.)
    modules = {v.tokens[:-2] for v in sources}
    candidates, doubts = vocabulary_pairs(sources, targets, meta_feed_forward(
        v for v in session.sources.values() if v.tokens[:-2] in modules))
    session.commit(candidates)
    for doubt in doubts:
        for view in doubt.sources:
            session.declined(True, view.key, doubt.reason, tuple(t.key for t in doubt.targets),
                             doubt.readings, doubt.statements)
        for view in doubt.targets:
            session.declined(False, view.key, doubt.reason, tuple(s.key for s in doubt.sources),
                             doubt.readings, doubt.statements)


def segment_stage(session: Session) -> None:
    """One segment inserted or dropped, the rest identical, alike in every block (too few keys
    for the learned stage: one MoE layer's router statistics)."""
    session.commit(segment_pairs(session, Rewriter(session.accepted)))


def confirmed_stage(session: Session, renames: dict[tuple[str, str], int]) -> None:
    """Pair keys that a weak rename hints at when conversions moved their siblings alike.

    ``renames`` counts, per segment rename (``block_sparse_moe`` → ``mlp``), the conversions
    whose keys differ by it: a router left unpaired beside experts that moved the same way has
    the support of every layer's experts, not only of its own few keys.
    """
    candidates: list[Candidate] = []
    for (is_source, key), hints in session.hints.items():
        if not is_source or key in session.used_sources or len({h[0] for h in hints}) != 1:
            continue
        confirmed = [(other, step, support) for other, step, support in hints
                     if step.kind == "substitute" and renames.get((step.source, step.target),
                                                                  0) >= 2]
        if not confirmed or confirmed[0][0] in session.used_targets:
            continue
        other, step, support = confirmed[0]
        scopes = renames[(step.source, step.target)]
        if len({h[0] for h in session.hints.get((False, other), ())}) != 1:
            continue
        session.accepted.setdefault(step, (ARBITRARY, learned_confidence(ARBITRARY, scopes),
                                           support + scopes))
        candidates.append(_candidate(session, session.sources[key], session.targets[other],
                                     step, None))
    session.commit(candidates)


class Rewriter:
    """Performs the accepted learned steps on keys (prepared once per round, used per key)."""

    def __init__(self, accepted: dict[Step, tuple[int, float, int]]) -> None:
        prefixes = [(grade, step) for step, grade in accepted.items() if step.kind == "prefix"]
        prefixes.sort(key=lambda item: (item[0][0], item[0][2], item[1]), reverse=True)
        self.prefixes = [(tuple(step.source.split(".")[:-1]), tuple(step.target.split(".")[:-1]),
                          step) for _, step in prefixes]
        self.drops = {s.source: s for s in accepted if s.kind == "segment" and s.source}
        options: dict[str, list[Step]] = defaultdict(list)
        for step in accepted:
            if step.kind == "substitute":
                options[step.source].append(step)
        # An ambiguous substitution (w1 → gate or up) is the assignment's to decide, not ours.
        self.substitutions = {a: steps[0] for a, steps in options.items() if len(steps) == 1}

    def __call__(self, view: KeyView) -> KeyView:
        """``view`` with every accepted step that applies to it performed."""
        if not (self.prefixes or self.drops or self.substitutions):
            return view
        for head, new_head, step in self.prefixes:
            if len(head) < len(view.tokens) and view.tokens[:len(head)] == head:
                view = rewritten(view, new_head + view.tokens[len(head):], step)
                break
        if self.drops:
            for token in [t for t in view.tokens[1:-1] if t in self.drops]:
                position = view.tokens.index(token, 1)
                tokens = view.tokens[:position] + view.tokens[position + 1:]
                view = rewritten(view, tokens, self.drops[token])
        if self.substitutions:
            for token in set(view.tokens) & self.substitutions.keys():
                step = self.substitutions[token]
                view = rewritten(view, tuple(step.target if t == token else t
                                             for t in view.tokens), step)
        return view


def _exact(session: Session, sources: Iterable[KeyView], learnable: bool) -> list[Candidate]:
    """Candidates whose canonical keys are equal, against the open (``learnable``) targets."""
    index = session.target_index()
    used = session.used_targets
    found: list[Candidate] = []
    known_weight = KNOWN * 64 + 63
    for s in sources:
        for t in index.get(s.canonical, ()):
            if t.key == s.key or t.key in used or (learnable and (False, t.key)
                                                   in session.align_only):
                continue
            if (not s.kernel and not t.kernel and s.info.dtype == t.info.dtype
                    and s.info.shape == t.info.shape):  # the bulk of large checkpoints: fits
                if s.learned:
                    found.append(_candidate(session, s, t, None, None))
                    continue
                steps = merge_parts(s.parts, t.parts)
                found.append(_new_candidate(Candidate, (s, t, steps, None,
                                                        known_confidence(steps), known_weight)))
                continue
            ok, transform = fit(s, t)
            if not ok:
                session.near_miss(s, t, _steps(s, t, None), transform)
                continue
            found.append(_candidate(session, s, t, None, transform))
    return found


def _steps(s: KeyView, t: KeyView, step: Step | None) -> tuple[Step, ...]:
    if step is None and not s.learned:
        return merge_parts(s.parts, t.parts)
    extra = (step,) if step is not None else ()
    return ordered((*merge_parts(s.parts, t.parts), *s.learned, *extra))


def _candidate(session: Session, s: KeyView, t: KeyView, step: Step | None,
               transform: Transform | None) -> Candidate:
    # Thousands of keys share one explanation: grade it once per round.
    memo = (s.parts, t.parts, s.learned, step)
    graded = session.graded.get(memo)
    if graded is None:
        steps = _steps(s, t, step)
        tier, confidence, support = KNOWN, known_confidence(steps), 1 << 62
        for learned in (*s.learned, *((step,) if step is not None else ())):
            grade_tier, grade_confidence, grade_support = session.accepted[learned]
            tier = min(tier, grade_tier)
            confidence = min(confidence, grade_confidence)
            support = min(support, grade_support)
        graded = (steps, confidence, tier * 64 + min(63, support.bit_length()))
        session.graded[memo] = graded
    return _new_candidate(Candidate, (s, t, graded[0], transform, graded[1], graded[2]))
