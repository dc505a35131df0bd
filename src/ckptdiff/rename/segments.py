"""One path segment inserted or dropped, the rest of the key identical, the same in every block.

The learned stage wants a segment rename seen twice before it trusts it, so a tensor that occurs
once per block in a model with one such block stays open: ERNIE 4.5 MoE's hub layout has
``model.layers.1.mlp.moe_statics.e_score_correction_bias`` where the model has
``model.layers.1.mlp.gate.moe_statics.e_score_correction_bias`` (its only MoE layer). The rest of
the key agreeing segment for segment is evidence of its own when the move is:

- *unique*: the source key's every hint names this one open target, and the target's this one
  open source (one move may read both as an inserted segment and as a longer prefix);
- *inside blocks and consistent*: the key sits in a numbered block, and every open key of its
  pattern (indices masked) moves the same way, onto every open key of the target's pattern;
  outside blocks only a key whose leaf is its own name (YOLOS' ``encoder.mid_position_embeddings``
  under ``encoder.interpolation``), never a bare ``weight``: a ``norm.weight`` that moved under
  a ``pooler`` may be another norm;
- *a name, not an index*: the segment is not a number (that is the alignment's matter);
- *fitting*: shapes (or the stated transform) and dtypes agree.

Two candidates for one key are left to the notes (``shapes fit several keys``): never guessed.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable

from ckptdiff.rename.assign import Candidate
from ckptdiff.rename.explain import ARBITRARY, Step, merge_parts, ordered
from ckptdiff.rename.keys import KeyView, fit
from ckptdiff.rename.lexical import GENERIC_LEAVES
from ckptdiff.rename.session import Session

_Pattern = tuple[str, ...]


def segment_pairs(session: Session, rewrite: Callable[[KeyView], KeyView]) -> list[Candidate]:
    """Candidates for open keys that differ by one inserted or dropped segment (see module).

    ``rewrite`` performs the accepted learned steps on a view (``stages.Rewriter``).
    """
    sources = {v.key: v for v in session.open_sources(learnable=True)}
    targets = {v.key: v for v in session.open_targets(learnable=True)}
    found: list[tuple[KeyView, KeyView, Step]] = []
    for (is_source, key), hints in session.hints.items():
        if not is_source or key not in sources:
            continue
        partners = {other for other, _, _ in hints if other in targets}
        segments = {step for other, step, _ in hints if other in targets
                    and step.kind == "segment"}
        if len(partners) != 1 or len(segments) != 1:
            continue
        (other,), (step,) = partners, segments
        if (step.source or step.target).isdigit():
            continue
        if {s for s, _, _ in session.hints.get((False, other), ()) if s in sources} != {key}:
            continue
        source, target = rewrite(sources[key]), targets[other]
        in_block = _pattern(source.tokens) != source.tokens
        if (in_block or source.tokens[-1] not in GENERIC_LEAVES) and fit(source, target)[0]:
            found.append((source, target, step))
    return _consistent(found, sources.values(), targets.values())


def _pattern(tokens: tuple[str, ...]) -> _Pattern:
    return tuple("#" if t.isdigit() else t for t in tokens)


def _consistent(found: list[tuple[KeyView, KeyView, Step]], sources: Iterable[KeyView],
                targets: Iterable[KeyView]) -> list[Candidate]:
    """The moves whose source pattern moves alike wherever it is open, onto every target."""
    source_count = Counter(_pattern(v.tokens) for v in sources)
    target_count = Counter(_pattern(v.tokens) for v in targets)
    groups: dict[tuple[_Pattern, _Pattern, Step], list[tuple[KeyView, KeyView, Step]]] = \
        defaultdict(list)
    for move in found:
        groups[(_pattern(move[0].tokens), _pattern(move[1].tokens), move[2])].append(move)
    candidates: list[Candidate] = []
    for (source_pattern, target_pattern, _), moves in groups.items():
        count = len(moves)
        if count != source_count[source_pattern] or count != target_count[target_pattern]:
            continue
        for source, target, step in moves:
            steps = ordered((*merge_parts(source.parts, target.parts), *source.learned, step))
            candidates.append(Candidate(source, target, steps, fit(source, target)[1],
                                        0.9 if count >= 2 else 0.86,
                                        ARBITRARY * 64 + min(63, count)))
    return candidates
