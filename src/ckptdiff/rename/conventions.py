"""Two naming conventions of the field that the words alone do not settle, settled by structure.

*Norms named after a sublayer.* Meta's ``attention_norm``/``ffn_norm``, DeepSeek's
``attn_norm``/``ffn_norm`` and OLMo's ``attention_layer_norm``/``feedforward_layer_norm`` name the
sublayer a norm belongs to, not its place: in a pre-norm block the norm comes *before* its
sublayer (``input_layernorm``, ``post_attention_layernorm``), in a post-norm block *after* it
(GTE's ``attn_ln`` → ``post_attention_layernorm``, ``mlp_ln`` → ``post_mlp_layernorm``). The
targets' place words give each target norm a block position (:func:`vocabulary.block_rank`);
a reading (every such norm before its sublayer, or every one after it) is taken only when it
alone puts each source norm on exactly one fitting target norm. Both readings fitting, or
neither, pairs nothing.

*Meta's feed-forward linears.* LLaMA, Mistral and DeepSeek name a gated MLP's linears ``w1``
(gate), ``w2`` (down) and ``w3`` (up). The numbers alone are no evidence (xformers' SwiGLU has
``w3`` as its down projection, Qwen's ``w2`` is its gate), so the reading is taken only where
the structure is Meta's: all three under one MLP module, ``w1`` and ``w3`` of one shape and
``w2`` of exactly its transpose, the sizes different.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from ckptdiff.rename.keys import KeyView, fit
from ckptdiff.rename.vocabulary import block_rank, concepts, key_concepts

_SUBLAYER_RANK = {"attn": 1.0, "mlp": 2.0}
_PLACES = frozenset({"input", "post"})
_META_FFN = {"w1": "gate", "w2": "down", "w3": "up"}


def _block_norm(view: KeyView) -> frozenset[str] | None:
    """The concepts of a norm that sits right inside a numbered block, else ``None``."""
    tokens = view.tokens
    if len(tokens) < 3 or not tokens[-3].isdigit():
        return None
    words = concepts(tokens[-2])
    return words if "norm" in words else None


def sublayer_norm_pairs(sources: Sequence[KeyView], targets: Sequence[KeyView]
                        ) -> list[tuple[KeyView, KeyView]]:
    """Pairs of one block's norms named after a sublayer with its norms named by place (see
    module), or none when the targets' places do not admit exactly one reading."""
    named: list[tuple[KeyView, float]] = []
    for view in sources:
        words = _block_norm(view)
        if words is None or words & _PLACES:
            continue
        sublayers = [w for w in _SUBLAYER_RANK if w in words]
        if len(sublayers) == 1:
            named.append((view, _SUBLAYER_RANK[sublayers[0]]))
    if not named or len({rank for _, rank in named}) != len(named):
        return []
    placed: dict[float, list[KeyView]] = defaultdict(list)
    for view in targets:
        if _block_norm(view) is not None:
            rank = block_rank(view.tokens[-2])
            if rank is not None:
                placed[rank].append(view)
    readings = []
    for offset in (-0.5, 0.5):  # before its sublayer, after it
        pairs = [(view, placed.get(rank + offset, [])) for view, rank in named]
        if all(len(found) == 1 and fit(view, found[0])[0] for view, found in pairs):
            readings.append([(view, found[0]) for view, found in pairs])
    return readings[0] if len(readings) == 1 else []


def meta_feed_forward(views: Iterable[KeyView]) -> dict[str, frozenset[str]]:
    """The concept Meta's convention gives ``w1``/``w2``/``w3`` (gate, down, up), per key, where
    the three sit under one MLP module with Meta's shapes (see module)."""
    modules: dict[tuple[str, ...], dict[tuple[str, str], KeyView]] = defaultdict(dict)
    for view in views:
        if len(view.tokens) >= 3 and view.tokens[-2] in _META_FFN:
            modules[view.tokens[:-2]][(view.tokens[-2], view.tokens[-1])] = view
    found: dict[str, frozenset[str]] = {}
    for parent, linears in modules.items():
        weights = [linears.get((name, "weight")) for name in ("w1", "w2", "w3")]
        if any(w is None for w in weights) or "mlp" not in key_concepts(parent):
            continue
        gate, down, up = (w.info.shape for w in weights if w is not None)
        if len(gate) == 2 and gate == up and tuple(down) == tuple(reversed(gate)) and (
                gate[0] != gate[1]):  # the biases follow their weights
            for (name, _), view in linears.items():
                found[view.key] = frozenset({_META_FFN[name]})
    return found
