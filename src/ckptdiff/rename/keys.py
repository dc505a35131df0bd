"""Keys as the rename engine sees them: segments in a canonical form, and what was normalized.

Canonicalization undoes only conventions that are known to be renames, never guesses:

- wrapper segments that frameworks insert (``module``, ``_orig_mod``, ``_fsdp_wrapped_module``,
  ``_checkpoint_wrapped_module``, PEFT's ``base_layer`` and leading ``base_model.model``);
- legacy weight norm: ``parametrizations.weight.original0/1`` reads as ``weight_g/weight_v``;
- legacy leaf names ``gamma``/``beta`` (LayerNorm before ``weight``/``bias``);
- TF/Keras names: ``/`` separators, ``kernel``, ``moving_mean``, ``embeddings``…, with the
  layout change a kernel needs to become a torch weight.

Each normalization is kept as a part, so a pair's explanation says exactly what differed.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

from ckptdiff.dtypes import can_convert
from ckptdiff.manifest import TensorInfo
from ckptdiff.rename.explain import Step, Transform

WRAPPER_SEGMENTS = frozenset({
    "module", "_orig_mod", "_forward_module", "_fsdp_wrapped_module",
    "_checkpoint_wrapped_module", "base_layer",
})
# Legacy torch leaf names (HF LayerNorm before 2019).
TORCH_SYNONYM_LEAVES = {"gamma": "weight", "beta": "bias"}
# TF/Keras variable names and their torch counterparts.
TF_LEAVES = {
    "kernel": "weight", "gamma": "weight", "beta": "bias", "moving_mean": "running_mean",
    "moving_variance": "running_var", "embeddings": "weight",
}
_WEIGHT_NORM = {"original0": "_g", "original1": "_v"}
# TF kernel [.., in, out] → torch weight [out, in, ..] by rank, and back.
_TO_TORCH = {2: (1, 0), 3: (2, 1, 0), 4: (3, 2, 0, 1), 5: (4, 3, 0, 1, 2)}
_FROM_TORCH = {2: (1, 0), 3: (2, 1, 0), 4: (2, 3, 1, 0), 5: (2, 3, 4, 1, 0)}


class KeyView(NamedTuple):
    """One tensor: its canonical segments, the parts normalized away, and learned rewrites."""

    key: str
    canonical: str  # the canonical segments joined with dots
    tokens: tuple[str, ...]
    info: TensorInfo
    parts: tuple[Step, ...] = ()
    learned: tuple[Step, ...] = ()
    tf_style: bool = False
    kernel: bool = False


_new_view = tuple.__new__
# Segments that make a key need normalizing (``base_model`` only at the start, where the slow
# path strips it; anywhere else that path keeps it and builds the same view).
_NORMALIZED = WRAPPER_SEGMENTS | {"parametrizations", "base_model"}


def make_view(info: TensorInfo) -> KeyView:
    """The canonical view of ``info``'s key."""
    key = info.key
    tf_style = "/" in key
    tokens = (key.replace("/", ".") if tf_style else key).split(".")
    if not tf_style and _NORMALIZED.isdisjoint(tokens) and tokens[-1] not in TORCH_SYNONYM_LEAVES:
        # The common case, nothing to normalize (built without NamedTuple's slower __new__).
        return _new_view(KeyView, (key, key, tuple(tokens), info, (), (), False, False))
    if not tf_style and len(tokens) > 2 and tokens[0] in WRAPPER_SEGMENTS:  # module., …
        rest = tokens[1:]
        if _NORMALIZED.isdisjoint(rest) and rest[-1] not in TORCH_SYNONYM_LEAVES:
            # One wrapper before plain segments (DataParallel's checkpoints, 100,000 keys).
            cut = len(tokens[0]) + 1
            return _new_view(KeyView, (key, key[cut:], tuple(rest), info,
                                       _prefix_parts(key[:cut], ""), (), False, False))
    if not tf_style and len(tokens) > 1 and tokens[0] in WRAPPER_SEGMENTS:
        start = 1
        while start < len(tokens) - 1 and tokens[start] in WRAPPER_SEGMENTS:
            start += 1
        rest = tokens[start:]
        if (WRAPPER_SEGMENTS.isdisjoint(rest[:-1]) and "parametrizations" not in rest
                and rest[0] != "base_model"):  # (DataParallel around PEFT: the general path)
            cut = len(".".join(tokens[:start])) + 1
            leaf = rest[-1]
            if leaf not in TORCH_SYNONYM_LEAVES:
                return _new_view(KeyView, (key, key[cut:], tuple(rest), info,
                                           _prefix_parts(key[:cut], ""), (), False, False))
            rest[-1] = TORCH_SYNONYM_LEAVES[leaf]
            return _new_view(KeyView, (key, ".".join(rest), tuple(rest), info,
                                       _prefix_parts(key[:cut], leaf), (), False, False))
    parts: list[Step] = []
    if tf_style:
        parts.append(Step("framework", "/", "."))
        if tokens[-1].endswith(":0"):
            tokens[-1] = tokens[-1][:-2]
    tokens = _strip_wrappers(tokens, parts)
    tokens = _weight_norm(tokens, parts)
    leaf = tokens[-1]
    kernel = False
    if tf_style and leaf in TF_LEAVES:
        parts.append(Step("framework", leaf, TF_LEAVES[leaf]))
        tokens[-1] = TF_LEAVES[leaf]
        kernel = leaf == "kernel"
    elif leaf in TORCH_SYNONYM_LEAVES:
        parts.append(Step("synonym", leaf, TORCH_SYNONYM_LEAVES[leaf]))
        tokens[-1] = TORCH_SYNONYM_LEAVES[leaf]
    return KeyView(key, ".".join(tokens), tuple(tokens), info, _interned(tuple(parts)), (),
                   tf_style, kernel)


@lru_cache(maxsize=256)
def _prefix_parts(prefix: str, legacy_leaf: str) -> tuple[Step, ...]:
    wrapper = Step("wrapper_prefix", prefix, "")
    if not legacy_leaf:
        return (wrapper,)
    return (wrapper, Step("synonym", legacy_leaf, TORCH_SYNONYM_LEAVES[legacy_leaf]))


def _strip_wrappers(tokens: list[str], parts: list[Step]) -> list[str]:
    start = 0
    while start < len(tokens) - 1:
        if tokens[start] in WRAPPER_SEGMENTS:
            start += 1
        elif tokens[start:start + 2] == ["base_model", "model"] and start + 2 < len(tokens):
            start += 2
        else:
            break
    if start:
        parts.append(Step("wrapper_prefix", ".".join(tokens[:start]) + ".", ""))
    kept = [tokens[start]] if start < len(tokens) else []
    for token in tokens[start + 1:-1]:
        if token in WRAPPER_SEGMENTS:
            parts.append(Step("wrapper_segment", token, ""))
        else:
            kept.append(token)
    if start < len(tokens) - 1:
        kept.append(tokens[-1])
    return kept


def _weight_norm(tokens: list[str], parts: list[Step]) -> list[str]:
    if len(tokens) >= 3 and tokens[-3] == "parametrizations" and tokens[-1] in _WEIGHT_NORM:
        name = tokens[-2] + _WEIGHT_NORM[tokens[-1]]
        parts.append(Step("weight_norm", ".".join(tokens[-3:]), name))
        return [*tokens[:-3], name]
    return tokens


def fit(source: KeyView, target: KeyView) -> tuple[bool, Transform | None]:
    """Whether ``source``'s tensor can fill ``target`` (after a kernel layout change if needed)."""
    s, t = source.info, target.info
    if not can_convert(s.dtype, t.dtype):
        return False, None
    transform = layout_change(source, target)
    if transform is None:
        return s.shape == t.shape, None
    return transform.apply(s.shape) == t.shape, transform


def layout_change(source: KeyView, target: KeyView) -> Transform | None:
    """The reorder between a TF/Keras kernel and a torch weight, ``None`` when layouts agree."""
    if source.kernel and not target.kernel and not target.tf_style:
        axes = _TO_TORCH.get(len(source.info.shape))
    elif target.kernel and not source.kernel and not source.tf_style:
        axes = _FROM_TORCH.get(len(source.info.shape))
    else:
        return None
    return None if axes is None else Transform(axes)


def rewritten(view: KeyView, tokens: tuple[str, ...], step: Step) -> KeyView:
    """``view`` with new canonical ``tokens``, remembering the learned ``step`` that made them."""
    return _new_view(KeyView, (view.key, ".".join(tokens), tokens, view.info, view.parts,
                               (*view.learned, step), view.tf_style, view.kernel))


_PARTS: dict[tuple[Step, ...], tuple[Step, ...]] = {}


def _interned(parts: tuple[Step, ...]) -> tuple[Step, ...]:
    """One shared tuple per distinct parts (keys share a handful): cheap to hash and compare."""
    if len(_PARTS) > 10_000:
        _PARTS.clear()
    return _PARTS.setdefault(parts, parts)
