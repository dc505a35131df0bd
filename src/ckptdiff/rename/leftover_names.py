"""Whether a leftover pair's names agree: a word that names a thing in common, nothing opposed.

Used by :mod:`leftovers` on the segments below the two keys' shared scope. Names agree when

- a bare parameter leaf (``weight``, ``bias``, ``running_mean``…) meets the same leaf (or its
  known synonym): a module's bias is never another module's weight;
- the two tensors' own names (the last segment but a parameter leaf, with its parent where it
  names only a layer kind: ``intermediate.dense``) share a concept of the field's vocabulary
  (``embed_out`` and ``lm_head`` both name the head) or a word naming the same thing on both
  sides: equal words, a plural (``sinks``/``sink``), or
  one word starting with the other of at least four letters (``patch``/``patchifier``,
  ``embed``/``embeddings``); words that every model uses (``weight``, ``param``, ``layer``,
  ``proj``…) are no evidence;
- no words oppose: a place (``pre``/``input`` against ``post``/``after``, ``in``/``out``) or a
  concept of one exclusive group (``q``/``k``, ``up``/``down``, ``emb``/``head``, ``attn``/``mlp``)
  named differently on the two sides says the keys are different tensors.
"""

from __future__ import annotations

import re

from ckptdiff.rename.lexical import SAME, relation
from ckptdiff.rename.vocabulary import EXCLUSIVE, GENERIC, concepts, key_concepts

# torch parameter leaves: a module's weight is not its bias, whatever the module is called.
PARAMETER_LEAVES = frozenset({
    "weight", "bias", "kernel", "gamma", "beta", "running_mean", "running_var",
    "num_batches_tracked", "moving_mean", "moving_variance", "weight_g", "weight_v",
})
# Words that say what kind of thing a tensor is in every model, never which one it is.
STOP_WORDS = frozenset({
    "weight", "weights", "param", "params", "parameter", "parameters", "learnable",
    "trainable", "layer", "layers", "module", "modules", "block", "blocks", "model", "proj",
    "self", "tensor", "buffer", "kernel",
})
# Place words, before and after: a key naming one side only is not a key naming the other only.
OPPOSITES = ((frozenset({"pre", "input", "before", "first"}),
              frozenset({"post", "after", "output", "last", "final"})),
             (frozenset({"in"}), frozenset({"out"})))
_PLACE_WORDS = frozenset(word for pair in OPPOSITES for side in pair for word in side)
# Layer kinds: a name of only these says what the layer is, not which one (``dense``, ``fc1``).
_KIND_WORDS = frozenset({"dense", "fc", "linear", "proj", "projection", "conv"})
_NOT_PLURAL = ("ss", "us", "is", "as")  # bias, axis, status: no plural to undo
_SPLIT = re.compile(r"[_\-]|(?<=[a-z])(?=[A-Z])")


def leaves_agree(a: str, b: str) -> bool:
    """Whether two leaves may name one tensor (a bare parameter leaf only its own kind)."""
    if a in PARAMETER_LEAVES or b in PARAMETER_LEAVES:
        return a == b or relation(a, b) == SAME
    return True


def names_agree(source: tuple[str, ...], target: tuple[str, ...]) -> bool:
    """Whether the segments ``source`` and ``target`` oppose in no word and their own names (the
    last segment but a parameter leaf: ``out_norm`` of ``out_norm.weight``) share one; a word
    of the containers alone (``attn`` of ``linear_attn`` and ``self_attn``) is no evidence."""
    own_source, own_target = _own_name(source), _own_name(target)
    own = _words(own_source), _words(own_target)
    if not any(_same_word(a, b) for a in own[0] for b in own[1]) and not (
            key_concepts(own_source) & key_concepts(own_target)) - GENERIC:
        return False
    source_words, target_words = _words(source), _words(target)
    for before, after in OPPOSITES:
        source_sides = {side for side, words in ((0, before), (1, after)) if source_words & words}
        target_sides = {side for side, words in ((0, before), (1, after)) if target_words & words}
        if len(source_sides) == len(target_sides) == 1 and source_sides != target_sides:
            return False
    source_concepts, target_concepts = key_concepts(source), key_concepts(target)
    for exclusive in EXCLUSIVE:
        named, named_there = source_concepts & exclusive, target_concepts & exclusive
        if named and named_there and not named & named_there:
            return False
    return True


def _own_name(tokens: tuple[str, ...]) -> tuple[str, ...]:
    """The segments that name the tensor: the last but a parameter leaf, and its parents while
    it names only a layer kind (``intermediate.dense``: a ``dense`` says which layer by its
    place)."""
    named = [t for t in tokens if t not in PARAMETER_LEAVES and not t.isdigit()]
    start = len(named) - 1
    while start > 0 and _only_a_kind(named[start]):
        start -= 1
    return tuple(named[max(start, 0):])


def _only_a_kind(token: str) -> bool:
    words = {word.rstrip("0123456789") for word in _words((token,))}  # fc1, fc2: fc
    return not words - _KIND_WORDS and not concepts(token) - GENERIC


def _words(tokens: tuple[str, ...]) -> set[str]:
    words: set[str] = set()
    for token in tokens:
        if token in PARAMETER_LEAVES or token.isdigit():
            continue
        for word in _SPLIT.split(token):
            word = word.lower()
            if len(word) > 3 and word.endswith("s") and not word.endswith(_NOT_PLURAL):
                word = word[:-1]  # sinks, embeddings: one word with sink, embedding
            if len(word) >= 2 and word not in STOP_WORDS:
                words.add(word)
    return words


def _same_word(a: str, b: str) -> bool:
    if a == b:
        return a not in _PLACE_WORDS  # "post" alone says where, not what
    short, long = sorted((a, b), key=len)
    return len(short) >= 4 and long.startswith(short)  # patch/patchifier, embed/embedding

