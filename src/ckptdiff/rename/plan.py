"""Rename suggestions: pair unexpected source keys with missing target keys, as reusable rules.

The engine explains renames it can establish — wrappers added or stripped at any depth
(``module.``, ``_orig_mod.``, ``base_model.model.``, ``.base_layer.``, FSDP and checkpoint
wrappers), prefixes and segments, token substitutions learned from the data (``gamma`` →
``weight``, ``attn`` → ``attention``), legacy weight norm, shifted ``Sequential`` indices, and
TF/Keras ↔ torch names with the kernel layout change — and says nothing when it cannot know.

Precision comes first: a pair is only suggested when shapes agree (after the stated transform)
and dtypes convert, each key is used at most once (a global assignment, not greedy), and when two
candidates are equally good neither is suggested; ``unpaired`` says why.
"""

from __future__ import annotations

import gc
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from ckptdiff.dtypes import numel
from ckptdiff.manifest import TensorInfo
from ckptdiff.records import fast_constructor
from ckptdiff.rename.explain import Step, describe
from ckptdiff.rename.fusion import find_conversions
from ckptdiff.rename.keys import KeyView, rewritten
from ckptdiff.rename.leftovers import leftover_stage
from ckptdiff.rename.lora import find_adapters, is_adapter_key, plan_adapters
from ckptdiff.rename.lora_config import LoraSettings
from ckptdiff.rename.results import Conversion, Rule, Suggestion, Unpaired
from ckptdiff.rename.rules import synthesize
from ckptdiff.rename.session import Session
from ckptdiff.rename.stages import (
    Rewriter,
    align_stage,
    confirmed_stage,
    known_stage,
    learned_stage,
    segment_stage,
    structure_stage,
    vocabulary_stage,
)

# ``Suggestion(...)``, one per pair: a hundred thousand at a time.
_suggestion = fast_constructor(Suggestion)


@dataclass(frozen=True)
class RenamePlan:
    """What the rename engine concluded: suggestions, the rules that perform them, and why not."""

    suggestions: tuple[Suggestion, ...]
    rules: tuple[Rule, ...]
    unpaired: tuple[Unpaired, ...]
    # Stacked, fused and split tensors that no rename expresses (after the renames).
    conversions: tuple[Conversion, ...] = ()

    def mapping(self) -> dict[str, Suggestion]:
        """Suggestions by source key."""
        return {s.source_key: s for s in self.suggestions}


def plan_renames(
    unexpected: Sequence[TensorInfo],
    missing: Sequence[TensorInfo],
    *,
    source_all: Sequence[TensorInfo] | None = None,
    target_all: Sequence[TensorInfo] | None = None,
    lora: LoraSettings | None = None,
) -> RenamePlan:
    """Pair ``unexpected`` source tensors with ``missing`` target tensors.

    ``source_all``/``target_all`` (every tensor of each side) let the engine see keys whose shapes
    differ under the same name (a layer shifted by an insertion), keep rules from touching keys
    that already load, and align blocks in order. ``lora``: the ``adapter_config.json`` beside
    the source, which says how its LoRA adapters merge (:mod:`ckptdiff.rename.lora`).
    """
    # The engine allocates many small acyclic objects: the cycle collector would rescan them
    # over and over (a third of the time at 100k keys) and has nothing to free.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _plan(unexpected, missing, source_all, target_all, lora)
    finally:
        if collecting:
            gc.enable()


def _plan(unexpected: Sequence[TensorInfo], missing: Sequence[TensorInfo],
          source_all: Sequence[TensorInfo] | None,
          target_all: Sequence[TensorInfo] | None, lora: LoraSettings | None) -> RenamePlan:
    adapters = {info.key for info in unexpected if "lora_" in info.key
                and is_adapter_key(info.key)}
    if adapters and any(is_adapter_key(info.key) for info in target_all or missing):
        adapters = set()  # the model has adapters too: they are renamed, never merged
    if adapters:
        # A model without adapters takes no adapter tensor under another name: a merge or a
        # drop explains them (below), and a rename would only pair a lora_A with a look-alike.
        source_all = unexpected if source_all is None else source_all
        unexpected = [info for info in unexpected if info.key not in adapters]
    session = Session.start(unexpected, missing, source_all, target_all)
    for stage in (known_stage, learned_stage, align_stage, structure_stage, vocabulary_stage,
                  segment_stage):
        if (len(session.used_sources) >= len(session.sources)
                or len(session.used_targets) >= len(session.targets)):
            break  # one side is fully paired: nothing left to learn
        if stage is align_stage and not _sizes_meet(session):
            break  # no rename can pair what is left: only conversions can explain it
        stage(session)
    conversions, notes = _conversions(session)
    if conversions and session.hints:
        confirmed_stage(session, _renames_in(conversions))
    # What the conversions explain or declined as a fused tensor's parts is no leftover.
    explained = {key for c in conversions for key in (*c.sources, *c.targets)}
    explained |= {key for n in notes for key in (n.source_key, n.target_key, *n.candidates)
                  if key is not None}
    leftover_stage(session, _read(session, session.open_sources(learnable=True)), explained)
    if adapters:
        renamed = {c.source.key: c.target.key for c in session.chosen}
        targets = {info.key: info for info in session.target_all}
        found, lora_notes = find_adapters(session.source_all, targets, renamed)
        merges, merge_notes = plan_adapters(found, targets, lora)
        conversions += merges
        notes += lora_notes + merge_notes
    # Suggestions in source order; keys outside ``source_all`` (if any) last, by key.
    by_source = {c.source.key: c for c in session.chosen}
    chosen = [by_source.pop(info.key) for info in session.source_all if info.key in by_source]
    chosen += sorted(by_source.values(), key=lambda c: c.source.key)
    suggestions = [
        _suggestion(c.source.key, c.target.key, c.confidence, describe(c.steps, c.transform))
        if c.transform is None else
        _suggestion(c.source.key, c.target.key, c.confidence, describe(c.steps, c.transform),
                    c.transform.name, c.transform.axes)
        for c in chosen]
    universe = [info.key for info in session.source_all]
    shapes = {info.key: info.shape for info in session.target_all}
    stored = {info.key: info.shape for info in session.source_all}

    def loud(source: str, target: str) -> bool:
        return stored.get(source) != shapes.get(target)

    rules = synthesize([(s.source_key, s.target_key) for s in suggestions], universe, shapes,
                       loud)
    return RenamePlan(tuple(suggestions), tuple(rules), _unpaired(session, conversions, notes),
                      tuple(conversions))


def _sizes_meet(session: Session) -> bool:
    """Whether some open source has as many elements as some open target.

    A rename (transposed, permuted or not) keeps every element, so where no sizes meet, the
    block, structure and vocabulary stages have nothing to pair: a hub MoE layout's 44,544
    per-expert tensors against 116 fused ones spent two thirds of a diff in them for nothing.
    Keys kept for the alignment (same name, another shape) always let the stages run.
    """
    if session.align_only:
        return True
    sizes = {numel(v.info.shape) for v in session.open_targets()}
    return any(numel(v.info.shape) in sizes for v in session.open_sources())


def _conversions(session: Session) -> tuple[list[Conversion], list[Unpaired]]:
    """Conversions among the keys the renames left open (source keys as the renames read them)."""
    targets = session.open_targets()
    sources = session.open_sources()
    if not targets or not sources:
        return [], []
    return find_conversions(_read(session, sources), targets)


def _read(session: Session, sources: list[KeyView]) -> list[KeyView]:
    """``sources`` as the accepted learned steps and the blocks moved whole read them."""
    rewrite = Rewriter(session.accepted)
    moved = _moved_scopes(session)
    views = [rewrite(v) for v in sources]
    if moved:
        views = [_in_scope(v, o.tokens, moved) for v, o in zip(views, sources, strict=True)]
    return views


def _moved_scopes(session: Session) -> dict[tuple[str, ...], tuple[str, ...]]:
    """Blocks the chosen renames moved whole (``encoder.layers.3`` → ``layers.3``), so that the
    keys they left open meet their block's targets (a fused ``attn.Wqkv`` beside renamed norms).

    A block counts when at least two renames left it, all for one other block, and no other
    block went there; renames by the vocabulary stage carry no learned step to rewrite with.
    """
    moves: dict[tuple[str, ...], set[tuple[str, ...]]] = defaultdict(set)
    support: Counter[tuple[str, ...]] = Counter()
    for chosen in session.chosen:
        source, target = _block(chosen.source.tokens), _block(chosen.target.tokens)
        if source and target:
            moves[source].add(target)
            support[source] += 1
    found = {s: next(iter(t)) for s, t in moves.items() if len(t) == 1 and support[s] >= 2}
    arrivals = Counter(found.values())
    return {s: t for s, t in found.items() if s != t and arrivals[t] == 1 and t not in moves}


def _block(tokens: tuple[str, ...]) -> tuple[str, ...]:
    """The key's segments up to its last index (empty when it has none)."""
    for position in range(len(tokens) - 1, -1, -1):
        if tokens[position].isdigit():
            return tokens[:position + 1]
    return ()


def _in_scope(view: KeyView, stored: tuple[str, ...],
              moved: dict[tuple[str, ...], tuple[str, ...]]) -> KeyView:
    """``view`` (rewritten by the accepted steps) in the block its block moved to.

    The block is looked up as rewritten and, failing that, as stored (``stored``: the key's own
    segments): a broader accepted prefix (``radio_model.`` stripped) may have rewritten the key
    before the block's own move (``radio_model.model.blocks.0`` → ``encoder.layer.0``) could.
    """
    block = _block(view.tokens)
    target = moved.get(block)
    if target is None:
        target = moved.get(_block(stored))
        if target is None or not block:
            return view
    step = Step("prefix", ".".join(block) + ".", ".".join(target) + ".")
    return rewritten(view, target + view.tokens[len(block):], step)


def _renames_in(conversions: list[Conversion]) -> dict[tuple[str, str], int]:
    """Segment renames between a conversion's source and target paths, with how many show it.

    Only a rename anchored on both sides counts: the segments before it agree (the scope) and
    so does the one after it (``block_sparse_moe.experts`` → ``mlp.experts``).
    """
    counts: dict[tuple[str, str], int] = {}
    for conversion in conversions:
        source = conversion.sources[0].split(".")
        target = conversion.targets[0].split(".")
        start = 0
        while start < min(len(source), len(target)) and source[start] == target[start]:
            start += 1
        if (start + 1 < min(len(source), len(target)) and source[start + 1] == target[start + 1]
                and not source[start].isdigit() and not target[start].isdigit()):
            pair = (source[start], target[start])
            counts[pair] = counts.get(pair, 0) + 1
    return counts


def _unpaired(session: Session, conversions: list[Conversion],
              notes: list[Unpaired]) -> tuple[Unpaired, ...]:
    """The renames' notes less the keys conversions explain; a conversion note replaces theirs."""
    explained = {key for c in conversions for key in (*c.sources, *c.targets)}
    # A fused tensor declined as ambiguous speaks for its parts: their weak rename hints mislead.
    explained |= {key for n in notes if n.readings for key in n.candidates}
    replaced = {(n.source_key, n.target_key) for n in notes}
    kept = [u for u in session.unpaired()
            if (u.source_key or u.target_key) not in explained
            and (u.source_key, u.target_key) not in replaced]
    return (*kept, *notes)


def suggest_renames(
    unexpected: Sequence[TensorInfo], missing: Sequence[TensorInfo]
) -> tuple[list[Suggestion], list[Rule]]:
    """Suggestions (one per paired key) and the rules that perform them, in application order."""
    plan = plan_renames(unexpected, missing)
    return list(plan.suggestions), list(plan.rules)
