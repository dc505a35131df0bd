"""Whether a leftover pair's names agree: a word that names a thing in common, nothing opposed.

Used by :mod:`leftovers` on the segments below the two keys' shared scope. Names agree when

- a bare parameter leaf (``weight``, ``bias``, ``running_mean``…) meets the same leaf (or its
  known synonym): a module's bias is never another module's weight;
- some word names the same thing on both sides: equal words, a plural (``sinks``/``sink``), or
  one word starting with the other of at least four letters (``patch``/``patchifier``,
  ``embed``/``embeddings``); words that every model uses (``weight``, ``param``, ``layer``,
  ``proj``…) are no evidence;
- no words oppose: a place (``pre``/``post``, ``input``/``output``, ``before``/``after``) or a
  concept of one exclusive group (``q``/``k``, ``up``/``down``, ``emb``/``head``, ``attn``/``mlp``)
  named differently on the two sides says the keys are different tensors.
"""

from __future__ import annotations

import re

from ckptdiff.rename.lexical import SAME, relation
from ckptdiff.rename.vocabulary import EXCLUSIVE, key_concepts

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
# Place words of which a tensor has one: the other side naming the opposite is another tensor.
OPPOSITES = (frozenset({"pre", "post"}), frozenset({"before", "after"}),
             frozenset({"input", "output"}), frozenset({"in", "out"}),
             frozenset({"first", "second", "last"}))
_PLACE_WORDS = frozenset(word for group in OPPOSITES for word in group)
_NOT_PLURAL = ("ss", "us", "is", "as")  # bias, axis, status: no plural to undo
_SPLIT = re.compile(r"[_\-]|(?<=[a-z])(?=[A-Z])")


def leaves_agree(a: str, b: str) -> bool:
    """Whether two leaves may name one tensor (a bare parameter leaf only its own kind)."""
    if a in PARAMETER_LEAVES or b in PARAMETER_LEAVES:
        return a == b or relation(a, b) == SAME
    return True


def names_agree(source: tuple[str, ...], target: tuple[str, ...]) -> bool:
    """Whether the segments ``source`` and ``target`` share a naming word and oppose in none."""
    source_words, target_words = _words(source), _words(target)
    if not any(_same_word(a, b) for a in source_words for b in target_words):
        return False
    for group in OPPOSITES:
        mine, theirs = source_words & group, target_words & group
        if mine and theirs and not mine & theirs:
            return False
    source_concepts, target_concepts = key_concepts(source), key_concepts(target)
    for exclusive in EXCLUSIVE:
        named, named_there = source_concepts & exclusive, target_concepts & exclusive
        if named and named_there and not named & named_there:
            return False
    return True


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

