"""Leftover pairs: the one open source and the one open target left side by side, alike in name.

Runs last, after the conversions, on the keys nothing else explained (sources as the accepted
learned steps read them, so ``backbone.embeddings`` meets ``model.embed_tokens`` once
``backbone.`` → ``model.`` is learned). A model that renamed one parameter of a module leaves
exactly that pair open: ``self_attn.attention_sink_bias`` beside ``self_attn.sinks``. A pair is
suggested only when all of these hold:

- *side by side*: both keys sit in the same block (the same indices, the same segments up to the
  last index), or both outside every block;
- *alone there*: under the segments the two keys share, no other open key of either side fits
  either of them by shape and dtype (``self_attn.sinks`` and a ``self_attn.temperature`` of one
  shape leave nothing to pair);
- *named alike*: their own names (the last segment but a parameter leaf) share a concept of the
  field's vocabulary or a word that names something (``sink`` in ``learnable_sink_param`` and
  ``sinks``, ``patch`` in ``patchifier`` and ``patch_embed``), never only ``weight``, ``param``
  or a word of their containers; no words oppose (``pre`` against ``post``, ``q`` against
  ``k``); a bare parameter leaf meets only its own kind (:mod:`leftover_names`);
- *unique and consistent*: it is each key's one such pair, and the source's pattern (indices
  masked) pairs the same way in every block where it is open, onto every open key of the
  target's pattern;
- *the rest explained*: no other open target stays missing in its block (or, outside blocks,
  outside them; extra source tensors may stay): where one does, the two models differ there,
  and one shape in common is a coincidence (a final norm against another model's embedding
  norm).

The evidence is the weakest of the engine's (one key, no learned rule): lower confidence than the
learned stages, and a key that had a partner of its shape but failed a condition says which.
Pairs are taken tightest scope first, in rounds, so that a pair inside ``self_attn`` settles
before a look-alike elsewhere in the block is judged.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

from ckptdiff.rename.assign import Candidate
from ckptdiff.rename.explain import STRUCTURE, Step, merge_parts, ordered
from ckptdiff.rename.keys import KeyView, fit
from ckptdiff.rename.leftover_names import leaves_agree, names_agree
from ckptdiff.rename.leftover_refusals import Refusal, refused_between
from ckptdiff.rename.session import Session

CONFIDENCE = 0.7  # below every learned stage's (0.72 and up)
ROUNDS = 3
MAX_GROUP = 40_000  # source × target pairs in one block beyond which it is left alone
MAX_FITS = 8  # a key with more look-alikes of its shape in its block is no leftover


def leftover_stage(session: Session, sources: Sequence[KeyView], explained: set[str]) -> None:
    """Pair the leftovers among ``sources`` (the open sources as the learned steps read them)
    and the open targets, leaving out the keys the conversions ``explained``; note refusals."""
    views = [v for v in sources if v.key not in explained and v.key not in session.used_sources]
    targets = [v for v in session.open_targets(learnable=True) if v.key not in explained]
    if not views or not targets:
        return
    candidates, refusals = leftover_pairs(views, targets)
    session.commit(candidates)
    for refusal in refusals:
        if refusal.says_more or (refusal.is_source, refusal.key) not in session.hints:
            session.refused(refusal.is_source, refusal.key, refusal.reason, refusal.candidates,
                            refusal.readings, refusal.statements)


def leftover_pairs(sources: Sequence[KeyView], targets: Sequence[KeyView]
                   ) -> tuple[list[Candidate], list[Refusal]]:
    """Leftover pairs among the open ``sources`` and ``targets`` (see module), and refusals."""
    chosen: list[Candidate] = []
    refusals: dict[tuple[bool, str], Refusal] = {}
    open_sources, open_targets = list(sources), list(targets)
    for _ in range(ROUNDS):
        found, refused = _round(open_sources, open_targets)
        refusals.update({(r.is_source, r.key): r for r in refused})
        if not found:
            break
        chosen += found
        used = {c.source.key for c in found} | {c.target.key for c in found}
        open_sources = [v for v in open_sources if v.key not in used]
        open_targets = [v for v in open_targets if v.key not in used]
    chosen, dropped = _complete(chosen, sources, targets)
    why = ("'{}' is the one open key of its shape beside it, but other keys there stay "
           "unexplained: not suggested")
    for c in dropped:
        refusals[(True, c.source.key)] = Refusal(True, c.source.key, why.format(c.target.key),
                                                 (c.target.key,))
        refusals[(False, c.target.key)] = Refusal(False, c.target.key, why.format(c.source.key),
                                                  (c.source.key,))
    paired = {(True, c.source.key) for c in chosen} | {(False, c.target.key) for c in chosen}
    return chosen, [r for k, r in refusals.items() if k not in paired]


def _complete(chosen: list[Candidate], sources: Sequence[KeyView], targets: Sequence[KeyView]
              ) -> tuple[list[Candidate], list[Candidate]]:
    """The pairs of blocks whose every open target pairs, alike in every block, and the rest.

    A leftover is a rename because everything around it loads: where a target beside it stays
    missing, the two models differ there, and a pair of one shape is a coincidence.
    """
    source_count = Counter(_pattern(v.tokens) for v in sources)
    kept = chosen
    while True:
        paired = {c.target.key for c in kept}
        short = {_block(v.tokens) for v in targets if v.key not in paired}
        whole = [c for c in kept if _block(c.target.tokens) not in short]
        count = Counter(_pattern(c.source.tokens) for c in whole)
        whole = [c for c in whole
                 if count[_pattern(c.source.tokens)] == source_count[_pattern(c.source.tokens)]]
        if len(whole) == len(kept):
            return kept, [c for c in chosen if c not in kept]
        kept = whole


def _round(sources: list[KeyView], targets: list[KeyView]
           ) -> tuple[list[Candidate], list[Refusal]]:
    by_block: dict[tuple[str, ...], tuple[list[KeyView], list[KeyView]]] = defaultdict(
        lambda: ([], []))
    for view in sources:
        by_block[_block(view.tokens)][0].append(view)
    for view in targets:
        by_block[_block(view.tokens)][1].append(view)
    proposals: list[tuple[KeyView, KeyView]] = []
    refusals: list[Refusal] = []
    for block_sources, block_targets in by_block.values():
        if block_sources and block_targets and (
                len(block_sources) * len(block_targets) <= MAX_GROUP):
            found, refused = _in_block(block_sources, block_targets)
            proposals += found
            refusals += refused
    kept, inconsistent = _consistent(proposals, sources, targets)
    why = ("'{}' is the one open key of its shape beside it, but the pattern does not pair alike "
           "in every block: not suggested")
    for s, t in inconsistent:
        refusals += [Refusal(True, s.key, why.format(t.key), (t.key,)),
                     Refusal(False, t.key, why.format(s.key), (s.key,))]
    return [_candidate(s, t, count) for s, t, count in kept], refusals


def _in_block(sources: list[KeyView], targets: list[KeyView]
              ) -> tuple[list[tuple[KeyView, KeyView]], list[Refusal]]:
    fits = {(i, j) for i, s in enumerate(sources) for j, t in enumerate(targets)
            if leaves_agree(s.tokens[-1], t.tokens[-1]) and fit(s, t)[0]}
    fits_of_source: dict[int, list[int]] = defaultdict(list)
    fits_of_target: dict[int, list[int]] = defaultdict(list)
    for i, j in fits:
        fits_of_source[i].append(j)
        fits_of_target[j].append(i)
    valid: set[tuple[int, int]] = set()
    alone: dict[tuple[int, int], bool] = {}
    for i, j in fits:
        if len(fits_of_source[i]) > MAX_FITS or len(fits_of_target[j]) > MAX_FITS:
            alone[(i, j)] = False
            continue
        scope = _shared(sources[i].tokens, targets[j].tokens)
        alone[(i, j)] = not any(b != j and _under(targets[b].tokens, scope)
                                for b in fits_of_source[i]) and not any(
            a != i and _under(sources[a].tokens, scope) for a in fits_of_target[j])
        if alone[(i, j)] and names_agree(sources[i].tokens[len(scope):],
                                         targets[j].tokens[len(scope):]):
            valid.add((i, j))
    of_source: dict[int, set[int]] = defaultdict(set)
    of_target: dict[int, set[int]] = defaultdict(set)
    for i, j in valid:
        of_source[i].add(j)
        of_target[j].add(i)
    found = [(sources[i], targets[j]) for i, j in valid
             if len(of_source[i]) == 1 and len(of_target[j]) == 1]
    refusals: list[Refusal] = []
    for i, j in sorted(fits - valid):
        if alone[(i, j)] and i not in of_source and j not in of_target:
            s, t = sources[i], targets[j]
            why = ("'{}' is the one open key of its shape beside it, but the names share no word "
                   "or contradict each other: not suggested")
            refusals += [Refusal(True, s.key, why.format(t.key), (t.key,), (), False),
                         Refusal(False, t.key, why.format(s.key), (s.key,), (), False)]
    for i, picks in of_source.items():
        if len(picks) > 1:
            keys = tuple(sorted(targets[j].key for j in picks))
            refusals.append(refused_between(True, sources[i].key, keys,
                                     [(sources[i].key, k) for k in keys]))
    for j, picks in of_target.items():
        if len(picks) > 1:
            keys = tuple(sorted(sources[i].key for i in picks))
            refusals.append(refused_between(False, targets[j].key, keys,
                                     [(k, targets[j].key) for k in keys]))
    return found, refusals


def _consistent(proposals: list[tuple[KeyView, KeyView]], sources: Sequence[KeyView],
                targets: Sequence[KeyView]
                ) -> tuple[list[tuple[KeyView, KeyView, int]], list[tuple[KeyView, KeyView]]]:
    """Proposals whose source pattern pairs alike wherever it is open (with their count), and
    the rest."""
    source_count = Counter(_pattern(v.tokens) for v in sources)
    target_count = Counter(_pattern(v.tokens) for v in targets)
    groups: dict[tuple[tuple[str, ...], tuple[str, ...]], list[tuple[KeyView, KeyView]]] = (
        defaultdict(list))
    for s, t in proposals:
        groups[(_pattern(s.tokens), _pattern(t.tokens))].append((s, t))
    kept: list[tuple[KeyView, KeyView, int]] = []
    rest: list[tuple[KeyView, KeyView]] = []
    for (source_pattern, target_pattern), members in groups.items():
        if len(members) == source_count[source_pattern] == target_count[target_pattern]:
            kept += [(s, t, len(members)) for s, t in members]
        else:
            rest += members
    return kept, rest


def _block(tokens: tuple[str, ...]) -> tuple[str, ...]:
    """The key's segments up to its last index (empty outside every block)."""
    for position in range(len(tokens) - 1, -1, -1):
        if tokens[position].isdigit():
            return tokens[:position + 1]
    return ()


def _pattern(tokens: tuple[str, ...]) -> tuple[str, ...]:
    return tuple("#" if t.isdigit() else t for t in tokens)


def _shared(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
    """The segments both keys start with (never a whole key)."""
    size = 0
    while size < min(len(a), len(b)) - 1 and a[size] == b[size]:
        size += 1
    return a[:size]


def _under(tokens: tuple[str, ...], scope: tuple[str, ...]) -> bool:
    return tokens[:len(scope)] == scope


def _candidate(s: KeyView, t: KeyView, count: int) -> Candidate:
    a, b = list(s.tokens), list(t.tokens)
    while len(a) > 1 and len(b) > 1 and a[-1] == b[-1]:
        a, b = a[:-1], b[:-1]
    while len(a) > 1 and len(b) > 1 and a[0] == b[0]:
        a, b = a[1:], b[1:]
    step = Step("leftover", ".".join(a), ".".join(b))
    _, transform = fit(s, t)
    return Candidate(s, t, ordered((*merge_parts(s.parts, t.parts), *s.learned, step)),
                     transform, CONFIDENCE, STRUCTURE * 64 + min(63, count))
