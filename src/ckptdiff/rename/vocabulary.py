"""The field's naming vocabulary: which words of a key name the same part of a model.

``q``/``query``, ``attn``/``attention``/``self_attn``, ``fc``/``dense``/``linear``/``proj``,
``ln``/``norm``/``LayerNorm``, ``mlp``/``ffn``/``intermediate``, ``emb``/``wte``/``embed_tokens``…
map onto one *concept*. Two keys' shared concepts are evidence that they hold the same tensor;
concepts of one exclusive group that differ (``q`` against ``k``, ``up`` against ``down``) are
evidence that they do not. Meta's ``w``-prefixed names (``wq``, ``wkv_b``, ``wgate``) carry the
concept of the name after the ``w``. Numbers inside words (``norm1``, ``ln_2``, ``c_fc_0``) are
ordinals, kept apart: :func:`block_rank` orders targets by where their words place them in a
block. Where a word sits can change what it names (:func:`key_concepts`).
"""

from __future__ import annotations

import re
from functools import lru_cache

_WORDS: dict[str, str] = {
    "q": "q", "query": "q", "k": "k", "key": "k", "v": "v", "value": "v",
    "o": "o", "out": "o", "output": "o", "kv": "kv",
    "attn": "attn", "attention": "attn",
    "fc": "proj", "dense": "proj", "linear": "proj", "proj": "proj", "projection": "proj",
    "ln": "norm", "norm": "norm", "layernorm": "norm", "rmsnorm": "norm",
    "mlp": "mlp", "ffn": "mlp", "intermediate": "mlp", "moe": "mlp", "sparse": "mlp",
    "feedforward": "mlp",
    "emb": "emb", "embed": "emb", "embeddings": "emb", "embedding": "emb", "wte": "emb",
    "wpe": "pos", "position": "pos", "pos": "pos", "ape": "pos",
    "gamma": "scale", "lambda": "scale", "scale": "scale", "ls": "scale",
    "up": "up", "down": "down", "gate": "gate", "input": "input", "pre": "input",
    "before": "input", "post": "post", "after": "post", "head": "head",
    "embedder": "emb", "patch": "patch", "cls": "cls", "token": "token", "tokens": "token",
}
# Whole segments spelled as one word in some libraries.
_SEGMENTS: dict[str, tuple[str, ...]] = {
    "lm_head": ("head",), "embed_out": ("head",), "feed_forward": ("mlp",),
    "block_sparse_moe": ("mlp",), "layer_norm": ("norm",), "embed_tokens": ("emb",),
    "word_embeddings": ("emb",),
}
# Concepts of one group name different tensors of a block: two keys differing there differ.
EXCLUSIVE = (frozenset({"q", "k", "v", "o", "kv"}), frozenset({"up", "down", "gate"}),
             frozenset({"emb", "head"}), frozenset({"attn", "mlp"}), frozenset({"pos", "emb"}))
GENERIC = frozenset({"proj"})  # shared by nearly every layer: no evidence alone
# Concepts that Meta's ``w``-prefixed linear names carry (``wq``, ``wkv_b``, ``wgate``).
_W_PREFIXED = frozenset({"q", "k", "v", "o", "kv", "up", "down", "gate"})
# A bare projection's spellings (GPT-2's ``c_proj``: "c" for its Conv1D): ``in_proj`` is not.
_BARE = frozenset({"proj", "dense", "projection", "c"})
_QKVO = frozenset({"q", "k", "v", "o", "kv"})
_SPLIT = re.compile(r"[_\-]|(?<=[a-z])(?=[A-Z])")
_ORDINAL = re.compile(r"^(?P<stem>[A-Za-z_]*?)_?(?P<number>\d+)$")
_BLOCK_ORDER = {"input": 0.5, "attn": 1.0, "mlp": 2.0}


@lru_cache(maxsize=65536)
def concepts(segment: str) -> frozenset[str]:
    """Concepts one key segment names (``self_attn`` → ``{attn}``; ``norm1`` → ``{norm}``)."""
    lowered = segment.lower()
    if lowered in _SEGMENTS:
        return frozenset(_SEGMENTS[lowered])
    found = set()
    for word in _SPLIT.split(segment):
        word = word.lower().rstrip("0123456789")
        if word in _WORDS:
            found.add(_WORDS[word])
        elif word[:1] == "w" and _WORDS.get(word[1:]) in _W_PREFIXED:
            found.add(_WORDS[word[1:]])  # Meta's wq/wk/wv/wo, DeepSeek's wkv/wgate: w + name
    return frozenset(found)


def key_concepts(tokens: tuple[str, ...]) -> frozenset[str]:
    """Concepts of every segment of a key but indices and the ``weight``/``bias`` leaf.

    Two places give a word its meaning: a bare projection right inside an attention module
    (timm's ``attn.proj``, GPT-2's ``attn.c_proj``, GPT-NeoX's ``attention.dense``) is its
    output; BERT's ``output`` right inside a block (``layer.3.output.dense``, beside
    ``attention.output.dense``) is the MLP's second linear, not attention's output.
    """
    found: set[str] = set()
    for at, token in enumerate(tokens):
        if token.isdigit() or token in ("weight", "bias"):
            continue
        words = concepts(token)
        before = tokens[at - 1] if at else ""
        if token == "output" and before.isdigit():
            words = frozenset({"mlp"})
        elif (at == len(tokens) - 2 and {w.lower() for w in _SPLIT.split(token)} <= _BARE
              and "attn" in concepts(before) and not concepts(before) & _QKVO):
            words = frozenset({"proj", "o"})
        found |= words
    return frozenset(found)


_PLACES = frozenset({"input", "post"})


def agreement(a: frozenset[str], b: frozenset[str], places: bool = True) -> int:
    """Shared concepts, or ``-1`` when an exclusive group tells the two apart.

    Norms whose place words differ never agree, one side's missing word included: Meta's
    ``attention_norm`` is the *input* norm of attention, GTE's ``attn_ln`` the one *after* it.
    ``places=False`` (see :func:`places_decide`) drops that rule.
    """
    for group in EXCLUSIVE:
        x, y = a & group, b & group
        if x and y and x != y:
            return -1
    if places and "norm" in a and "norm" in b and a & _PLACES != b & _PLACES:
        return -1
    return len(a & b)


def places_decide(sources: list[frozenset[str]], targets: list[frozenset[str]]) -> bool:
    """Whether place words can tell a block's norms apart: False when no source norm has one
    and every target norm has the same (GTE's ``attn_ln``, ``mlp_ln`` against
    ``post_attention_layernorm``, ``post_mlp_layernorm``), one norm for each; then which is
    which only the sublayer's word can say. Meta's ``attention_norm`` against ``input_layernorm``
    and ``post_attention_layernorm`` keeps the rule: those targets' places differ."""
    source_norms = [c for c in sources if "norm" in c]
    target_places = {c & _PLACES for c in targets if "norm" in c}
    return not (source_norms and len(source_norms) == sum("norm" in c for c in targets)
                and all(not c & _PLACES for c in source_norms) and len(target_places) == 1
                and target_places != {frozenset()})


def ordinal(segment: str) -> tuple[str, int] | None:
    """``('ln', 2)`` for ``ln_2``, ``('norm', 1)`` for ``norm1``; ``None`` when not numbered."""
    match = _ORDINAL.match(segment)
    return None if match is None else (match.group("stem"), int(match.group("number")))


def block_rank(segment: str) -> float | None:
    """Where a segment's words place it in a transformer block (input, attention, mlp, post …).

    ``input_layernorm`` 0.5, ``post_attention_layernorm`` 1.5, ``post_mlp_layernorm`` 2.5,
    ``layernorm_before`` 0.5, ``layernorm_after`` 1.5; ``None`` when the words place it nowhere.
    """
    words = concepts(segment)
    base = [_BLOCK_ORDER[w] for w in ("attn", "mlp") if w in words]
    if len(base) > 1:
        return None
    if "post" in words:  # alone (ViT's ``layernorm_after``): after the block's attention
        return base[0] + 0.5 if base else 1.5
    if "input" in words:
        return base[0] - 0.5 if base else 0.5
    return None
