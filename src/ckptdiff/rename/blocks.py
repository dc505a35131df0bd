"""Renames the learned rules cannot support, decided by the field's vocabulary inside blocks.

Runs on the keys every earlier stage left open. Keys meet only when they sit at the same indices
(``transformer.h.3`` and ``model.layers.3``), are both biases or both not, and fit by shape and
dtype. Within such a group a pair is proposed when the two are each other's one best match by
shared concepts (:mod:`vocabulary`: ``attn.attention.q_proj`` ~ ``self_attn.q_proj``; between
as many shared concepts the nearer path, ``attn.compressor.wkv`` ~
``self_attn.compressor.kv_proj`` rather than ``self_attn.kv_proj``); for norms named after a
sublayer, by the one reading the targets' places admit (:mod:`conventions`); or, for numbered
siblings that tie (``ln_1``, ``ln_2``), when the targets' words order them in a block
(``input_layernorm`` before ``post_attention_layernorm``) or number them alike (``norm1``,
``norm2``).

A proposal is kept only when it holds in *every* block: its source pattern (indices masked) is
paired the same way each time it occurs, on both sides; and only from a group where proposals
pair at least half the keys of one side (two different models share a word here and there). A
key outside any block (``wte`` → ``embed_tokens``) needs a shared concept beyond the generic
``proj``, and blocks beside it that renamed alike.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence

from ckptdiff.rename.assign import Candidate
from ckptdiff.rename.conventions import sublayer_norm_pairs
from ckptdiff.rename.explain import ARBITRARY, Step, merge_parts
from ckptdiff.rename.keys import KeyView, fit
from ckptdiff.rename.siblings import Doubt, differing, undecided
from ckptdiff.rename.vocabulary import (
    GENERIC,
    agreement,
    block_rank,
    concepts,
    key_concepts,
    ordinal,
    places_decide,
)

_TIE = 64  # a score is shared concepts × _TIE + how near the two paths are (below _TIE)
MAX_GROUP = 40_000  # source × target pairs in one group beyond which it is left alone
_Proposal = tuple[KeyView, KeyView, str, int]  # source, target, how, distinctive concepts


def vocabulary_pairs(sources: Sequence[KeyView], targets: Sequence[KeyView],
                     conventions: Mapping[str, frozenset[str]] | None = None
                     ) -> tuple[list[Candidate], list[Doubt]]:
    """Candidates the vocabulary and block order establish among open keys, and the numbered
    siblings left tied in groups where they established most pairs (:mod:`siblings`).

    ``conventions`` adds concepts to source keys that their structure gives them
    (:func:`conventions.meta_feed_forward`)."""
    conventions = conventions or {}
    groups: dict[tuple[object, ...], tuple[list[KeyView], list[KeyView]]] = {}
    for view in targets:
        groups.setdefault(_group(view), ([], []))[1].append(view)
    for view in sources if groups else ():
        group = groups.get(_group(view))
        if group is not None:
            group[0].append(view)
    proposals: list[_Proposal] = []
    doubts: list[Doubt] = []
    for group_sources, group_targets in groups.values():
        if group_sources and len(group_sources) * len(group_targets) <= MAX_GROUP:
            found, tied = _propose(group_sources, group_targets, conventions)
            # Two different models share a word here and there; one model renamed shares most.
            if 2 * len(found) >= min(len(group_sources), len(group_targets)):
                proposals += found
                doubts += tied
    return _consistent(proposals, sources, targets), doubts


def _group(view: KeyView) -> tuple[object, ...]:
    # VideoMAE's ``attention.q_bias`` is the bias of ``attention.query``, JAX's ``b`` (beside
    # ``w``) a module's bias: biases all the same. A table (DeepSeek's ``position_bias``) is not.
    leaf = view.tokens[-1]
    return (tuple(t for t in view.tokens if t.isdigit()), leaf in ("bias", "b")
            or (leaf.endswith("_bias") and len(view.info.shape) == 1))


def _names(view: KeyView) -> frozenset[str]:
    """The module names on a key's path (no index, no leaf): where in the model it sits."""
    return frozenset(t for t in view.tokens[:-1] if not t.isdigit())


def _propose(sources: list[KeyView], targets: list[KeyView],
             conventions: Mapping[str, frozenset[str]]) -> tuple[list[_Proposal], list[Doubt]]:
    source_concepts = [key_concepts(s.tokens) | conventions.get(s.key, frozenset())
                       for s in sources]
    target_concepts = [key_concepts(t.tokens) for t in targets]
    places = places_decide(source_concepts, target_concepts)
    source_names = [_names(s) for s in sources]
    target_names = [_names(t) for t in targets]
    score: dict[tuple[int, int], int] = {}
    for i, s in enumerate(sources):
        for j, t in enumerate(targets):
            if fit(s, t)[0]:
                agreed = agreement(source_concepts[i], target_concepts[j], places)
                if agreed >= 1:  # ties between as many shared concepts: the nearer path wins
                    near = len(source_names[i] & target_names[j]) - len(
                        source_names[i] ^ target_names[j])
                    agreed = agreed * _TIE + max(0, min(_TIE - 1, _TIE // 2 + near))
                score[(i, j)] = agreed
    best_of_source = _best(score, 0)
    best_of_target = _best(score, 1)
    found: list[_Proposal] = []
    picked: set[int] = set()
    for i, picks in best_of_source.items():
        if len(picks) == 1:
            (j,) = picks
            if best_of_target.get(j) == {i}:
                shared = source_concepts[i] & target_concepts[j]
                found.append((sources[i], targets[j], "vocabulary", len(shared - GENERIC)))
                picked.add(i)
    taken = {id(t) for _, t, _, _ in found}
    position = {id(v): i for i, v in enumerate(sources)}
    for s, t in sublayer_norm_pairs([v for i, v in enumerate(sources) if i not in picked],
                                    [v for v in targets if id(v) not in taken]):
        found.append((s, t, "order", 1))
        taken.add(id(t))
        picked.add(position[id(s)])
    # The rest, grouped by the targets they fit by shape: numbered siblings may be ordered.
    ranked = [any(block_rank(token) is not None or (not token.isdigit() and ordinal(token))
                  for token in t.tokens[:-1]) for t in targets]
    siblings: dict[frozenset[int], list[int]] = defaultdict(list)
    for i in range(len(sources)):
        if i not in picked:  # among its best by concepts where it has any (norms: the norms)
            fitting = frozenset(j for (a, j) in score if a == i and id(targets[j]) not in taken
                                and ranked[j] and (i not in best_of_source
                                                   or j in best_of_source[i]))
            siblings[fitting].append(i)
    for fitting, tied in siblings.items():
        found += _by_block_order([sources[i] for i in tied], [targets[j] for j in fitting])
    return found, _tied(sources, targets, score, found)


def _tied(sources: list[KeyView], targets: list[KeyView], score: dict[tuple[int, int], int],
          found: list[_Proposal]) -> list[Doubt]:
    """Numbered siblings still open that fit exactly as many open targets, all alike."""
    paired = {id(view) for proposal in found for view in proposal[:2]}
    fitting: dict[int, set[int]] = defaultdict(set)
    for i, j in score:  # one pass, not one per source
        if id(sources[i]) not in paired and id(targets[j]) not in paired:
            fitting[i].add(j)
    fits: dict[frozenset[int], list[int]] = defaultdict(list)
    for i, source in enumerate(sources):
        if id(source) not in paired:
            fits[frozenset(fitting.get(i, ()))].append(i)
    doubts = [undecided([sources[i] for i in tied], [targets[j] for j in sorted(over)])
              for over, tied in fits.items()]
    return [d for d in doubts if d is not None]


def _best(score: dict[tuple[int, int], int], side: int) -> dict[int, set[int]]:
    """Per key of ``side``, the keys of the other side with its highest score (at least 1)."""
    top: dict[int, int] = {}
    for pair, value in score.items():
        if value >= 1 and value > top.get(pair[side], 0):
            top[pair[side]] = value
    best: dict[int, set[int]] = defaultdict(set)
    for pair, value in score.items():
        if value >= 1 and value == top.get(pair[side]):
            best[pair[side]].add(pair[1 - side])
    return best


def _by_block_order(sources: list[KeyView], targets: list[KeyView]) -> list[_Proposal]:
    """Numbered siblings tied over as many targets, paired in the order the targets' words say."""
    if len(sources) < 2 or len(sources) != len(targets):
        return []
    source_at = differing(sources)
    target_at = differing(targets)
    if source_at is None or target_at is None:
        return []
    numbered = [ordinal(s.tokens[source_at]) for s in sources]
    if any(n is None for n in numbered):
        return []
    stems = {n[0] for n in numbered if n is not None}
    numbers = [n[1] for n in numbered if n is not None]
    ranks: list[float | None] = [block_rank(t.tokens[target_at]) for t in targets]
    if any(r is None for r in ranks):
        ranks = _same_numbers(stems, numbers, [t.tokens[target_at] for t in targets])
    if any(r is None for r in ranks):
        return []
    if len(stems) != 1 or len(set(numbers)) != len(numbers) or len(set(ranks)) != len(ranks):
        return []
    by_number = sorted(range(len(sources)), key=lambda i: numbers[i])
    by_rank = sorted(range(len(targets)), key=lambda j: ranks[j] or 0.0)
    pairs = [(sources[i], targets[j]) for i, j in zip(by_number, by_rank, strict=True)]
    return [(s, t, "order", 1) for s, t in pairs if fit(s, t)[0]] if all(
        fit(s, t)[0] for s, t in pairs) else []


def _same_numbers(stems: set[str], numbers: list[int], words: list[str]) -> list[float | None]:
    """The targets' own numbers as their ranks where they number one name of the same concept
    with the very same numbers (``ln1``/``ln2`` against ``norm1``/``norm2``); else ``None``s.
    Other numbers (``c_fc_0``/``c_fc_1`` against ``fc1``/``fc2``) would be a guess."""
    numbered = [ordinal(word) for word in words]
    target_stems = {n[0] for n in numbered if n is not None}
    if (any(n is None for n in numbered) or len(stems) != 1 or len(target_stems) != 1
            or not concepts(next(iter(stems))) or concepts(next(iter(stems))) != concepts(
                next(iter(target_stems))) or sorted(n[1] for n in numbered if n) != sorted(
                numbers)):
        return [None] * len(words)
    return [float(n[1]) for n in numbered if n is not None]


def _pattern(view: KeyView) -> tuple[str, ...]:
    return tuple("#" if t.isdigit() else t for t in view.tokens)


def _consistent(proposals: list[_Proposal], sources: Sequence[KeyView],
                targets: Sequence[KeyView]) -> list[Candidate]:
    """Proposals whose pattern pairs the same way in every block (and on both sides)."""
    source_count = Counter(_pattern(v) for v in sources)
    target_count = Counter(_pattern(v) for v in targets)
    by_pattern: dict[tuple[tuple[str, ...], tuple[str, ...]], list[_Proposal]] = defaultdict(list)
    for proposal in proposals:
        by_pattern[(_pattern(proposal[0]), _pattern(proposal[1]))].append(proposal)
    kept = {pattern: members for pattern, members in by_pattern.items()
            if len(members) == source_count[pattern[0]] == target_count[pattern[1]]}
    if not any(len(members) >= 2 for members in kept.values()):
        return []  # a key outside blocks is only trusted beside blocks that renamed alike
    found: list[Candidate] = []
    for members in kept.values():
        count = len(members)
        if count < 2 and min(p[3] for p in members) < 1:
            continue  # one key, and only a generic word in common: too little
        for s, t, how, _ in members:
            found.append(_candidate(s, t, how, count))
    return found


def _candidate(s: KeyView, t: KeyView, how: str, blocks: int) -> Candidate:
    a, b = list(s.tokens), list(t.tokens)
    while len(a) > 1 and len(b) > 1 and a[-1] == b[-1]:
        a, b = a[:-1], b[:-1]
    while len(a) > 1 and len(b) > 1 and a[0] == b[0]:
        a, b = a[1:], b[1:]
    step = Step(how, ".".join(a), ".".join(b))
    confidence = (0.9 if blocks >= 2 else 0.86) if how == "vocabulary" else 0.85
    _, transform = fit(s, t)
    return Candidate(s, t, (*merge_parts(s.parts, t.parts), step), transform, confidence,
                     ARBITRARY * 64 + min(63, blocks))
