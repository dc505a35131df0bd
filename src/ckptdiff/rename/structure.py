"""Cross-framework pairs whose layer names differ: Keras ``dense_1/kernel`` ↔ torch ``2.weight``.

Only between a TF/Keras side and a torch side, and only for keys no name-based rule explained.
Keys group into layers (everything but the last segment); layers group into kinds by what they
hold (``weight``+``bias`` of rank 2 is a dense layer, rank 4 a conv, four statistics a norm). Within
one kind, layers pair when the counts agree and either both sides' orders are trustworthy
(Keras' auto-numbered ``dense``, ``dense_1``… or TF's ``layer_with_weights-N`` against torch's
registration order) and every pair fits in order, or every layer fits exactly one layer on the
other side. Anything short of that pairs nothing.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence

from ckptdiff.rename.align import forced_pairs
from ckptdiff.rename.assign import Candidate
from ckptdiff.rename.explain import STRUCTURE, Step, merge_parts
from ckptdiff.rename.keys import KeyView, fit
from ckptdiff.rename.lexical import family

_DIGITS = re.compile(r"(\d+)")
_IGNORED_LEAVES = frozenset({"num_batches_tracked"})

Layer = dict[str, KeyView]


def structure(sources: Sequence[KeyView], targets: Sequence[KeyView]) -> list[Candidate]:
    """Candidates pairing whole layers across frameworks; empty unless the sides differ in style."""
    if not sources or not targets:
        return []
    source_styles = {v.tf_style for v in sources}
    target_styles = {v.tf_style for v in targets}
    if len(source_styles) != 1 or len(target_styles) != 1 or source_styles == target_styles:
        return []
    source_tf, target_tf = source_styles == {True}, target_styles == {True}
    source_kinds = _kinds(_layers(sources, source_tf))
    target_kinds = _kinds(_layers(targets, target_tf))
    step = Step("structure", "TF/Keras layers with torch modules", "")
    found: list[Candidate] = []
    for kind, src in source_kinds.items():
        tgt = target_kinds.get(kind, [])
        for s_layer, t_layer in _pair_layers(src, tgt, source_tf):
            for leaf, s in s_layer.items():
                t = t_layer.get(leaf)
                if t is None:
                    continue
                _, transform = fit(s, t)
                steps = (*merge_parts(s.parts, t.parts), step)
                found.append(Candidate(s, t, steps, transform, 0.85, STRUCTURE * 64 + 32))
    return found


def _layers(views: Sequence[KeyView], tf_side: bool) -> list[tuple[tuple[str, ...], Layer]]:
    layers: dict[tuple[str, ...], Layer] = {}
    for view in views:
        layers.setdefault(view.tokens[:-1], {})[view.tokens[-1]] = view
    items = list(layers.items())
    if tf_side:  # files list layers by name; Keras numbers a family's layers in creation order
        items.sort(key=lambda item: _natural(_location(next(iter(item[1].values())))))
    return items


def _location(view: KeyView) -> str:
    storage = view.info.storage or ""
    return storage if "/vars/" in storage else view.key  # Keras 3 files: layers/dense_1/vars/0


def _natural(text: str) -> tuple[object, ...]:
    return tuple(int(part) if part.isdigit() else part for part in _DIGITS.split(text))


def _kinds(layers: list[tuple[tuple[str, ...], Layer]]
           ) -> dict[tuple[object, ...], list[tuple[tuple[str, ...], Layer]]]:
    kinds: dict[tuple[object, ...], list[tuple[tuple[str, ...], Layer]]] = defaultdict(list)
    for name, layer in layers:
        leaves = tuple(sorted(set(layer) - _IGNORED_LEAVES))
        weight = layer.get("weight")
        kinds[(leaves, -1 if weight is None else len(weight.info.shape))].append((name, layer))
    return kinds


def _pair_layers(src: list[tuple[tuple[str, ...], Layer]],
                 tgt: list[tuple[tuple[str, ...], Layer]],
                 source_tf: bool) -> list[tuple[Layer, Layer]]:
    fits = [[1 if _fits(a, b) else 0 for _, b in tgt] for _, a in src]
    if _ordered([layer for _, layer in (src if source_tf else tgt)]):
        pairs = forced_pairs(fits)
    else:  # no order to trust: only layers with exactly one fitting partner, both ways
        pairs = [(i, row.index(1)) for i, row in enumerate(fits) if sum(row) == 1
                 and sum(fits[k][row.index(1)] for k in range(len(src))) == 1]
    return [(src[i][1], tgt[j][1]) for i, j in pairs]


def _ordered(layers: list[Layer]) -> bool:
    """True when the TF/Keras layers' names carry their creation order (one numbered family).

    Keras 3 files name each layer's group by its class, numbered in model order
    (``layers/dense_1/vars``), whatever the user called the layer: that name is used when known.
    """
    names = [_group(next(iter(layer.values()))) for layer in layers]
    if len(names) <= 1:
        return True
    if any(len(n) != len(names[0]) or n[:-1] != names[0][:-1] for n in names):
        return False
    return len({family(n[-1]) if n else "" for n in names}) == 1


def _group(view: KeyView) -> tuple[str, ...]:
    storage = view.info.storage or ""
    if "/vars/" in storage:
        return tuple(storage.split("/vars/")[0].split("/"))
    return view.tokens[:-1]


def _fits(a: Layer, b: Layer) -> bool:
    leaves = set(a) - _IGNORED_LEAVES
    if leaves != set(b) - _IGNORED_LEAVES:
        return False
    return all(fit(a[leaf], b[leaf])[0] for leaf in leaves)
