"""Shifted indices: layers inserted into or removed from a ``Sequential``/``ModuleList``.

Keys under one container (``layers.3.mlp.weight``, or Keras' ``dense_3/kernel``) form blocks, one
per index. Blocks of both sides are aligned in order (an insertion or removal never reorders the
others) by what they hold: the same member names with fitting shapes. The alignment maximises
the blocks kept in place first, then the blocks paired; a pair of blocks is suggested only when
*every* best alignment contains it, so a layer whose shape matches its neighbours' stays unpaired.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Collection, Sequence

from ckptdiff.dtypes import is_numeric
from ckptdiff.manifest import TensorInfo
from ckptdiff.rename.assign import Candidate
from ckptdiff.rename.explain import SHIFT, Step, merge_parts
from ckptdiff.rename.keys import KeyView, fit, layout_change

_INDEXED = re.compile(r"^(?:(?P<family>.+)[_-])?(?P<index>\d+)$")
_IGNORED_MEMBERS = frozenset({("num_batches_tracked",)})
MAX_CELLS = 1_000_000  # blocks × blocks of one container (beyond: no suggestion)
# A torch weight to hold TF/Keras kernels against (only its style matters).
_TORCH_TWIN = KeyView("weight", "weight", ("weight",), TensorInfo("weight", (), "float32"))

Container = tuple[tuple[str, ...], str]
Blocks = dict[int, dict[tuple[str, ...], KeyView]]


def align(sources: Sequence[KeyView], targets: Sequence[KeyView], open_sources: Collection[str],
          open_targets: Collection[str], taken_sources: Collection[str],
          taken_targets: Collection[str], fitting_source_keys: Collection[str]
          ) -> list[Candidate]:
    """Candidates that move whole blocks to another index.

    ``open_*`` are the unpaired keys with findings; ``taken_*`` are keys already paired;
    ``fitting_source_keys`` are source keys that load as they are (never displaced).
    """
    source_blocks = _blocks(sources)
    target_blocks = _blocks(targets)
    moves: list[tuple[Step, list[tuple[KeyView, KeyView]]]] = []
    covered: set[str] = set()
    # Outer containers first: a layer that moves carries its inner lists with it.
    for container in sorted(source_blocks, key=lambda c: (len(c[0]), c)):
        src, tgt = source_blocks[container], target_blocks.get(container)
        if tgt is None or not _touches(src, open_sources) or not _touches(tgt, open_targets):
            continue
        for i, j in _forced_moves(src, tgt):
            pairs = _member_pairs(src[i], tgt[j])
            if pairs is None or any(s.key in covered or s.key in taken_sources
                                    for s, _ in pairs):
                continue
            covered.update(s.key for s, _ in pairs)
            label = ".".join(container[0] + ((container[1] + "_N",) if container[1] else ("N",)))
            moves.append((Step("shift", label, f"{j - i:+d}"), pairs))
    found: list[Candidate] = []
    for step, pairs in moves:
        if any(t.key in taken_targets or (t.key in fitting_source_keys and t.key not in covered)
               for _, t in pairs):
            continue  # the target key is held by a tensor that loads as it is
        for s, t in pairs:
            _, transform = fit(s, t)
            steps = (*merge_parts(s.parts, t.parts), *s.learned, step)
            found.append(Candidate(s, t, steps, transform, 0.9, SHIFT * 64 + 32))
    return found


def indexed(view: KeyView) -> bool:
    """True when a segment before the leaf is numbered (``3``, ``dense_3``, ``layer-3``) or the
    key is a TF/Keras one (whose first layer of a family has no number)."""
    return view.tf_style or any(_INDEXED.match(t) for t in view.tokens[:-1])


def _blocks(views: Sequence[KeyView]) -> dict[Container, Blocks]:
    found: dict[Container, Blocks] = defaultdict(lambda: defaultdict(dict))
    bare: list[tuple[KeyView, int]] = []
    for view in views:
        tokens = view.tokens
        for position in range(len(tokens) - 1):
            token = tokens[position]
            match = _INDEXED.match(token) if token[-1:].isdigit() else None
            if match is None:
                if view.tf_style:
                    bare.append((view, position))
                continue
            container = (tokens[:position], match.group("family") or "")
            found[container][int(match.group("index"))][tokens[position + 1:]] = view
    for view, position in bare:  # Keras names the first layer of a family without a suffix
        container = (view.tokens[:position], view.tokens[position])
        if container in found:
            found[container][0].setdefault(view.tokens[position + 1:], view)
    return found


def _touches(blocks: Blocks, keys: Collection[str]) -> bool:
    return any(v.key in keys for block in blocks.values() for v in block.values())


def _member_pairs(src: dict[tuple[str, ...], KeyView],
                  tgt: dict[tuple[str, ...], KeyView]) -> list[tuple[KeyView, KeyView]] | None:
    if set(src) - _IGNORED_MEMBERS != set(tgt) - _IGNORED_MEMBERS:
        return None
    pairs = [(src[m], tgt[m]) for m in src if m in tgt]
    return pairs if all(fit(s, t)[0] for s, t in pairs) else None


def _forced_moves(src: Blocks, tgt: Blocks) -> list[tuple[int, int]]:
    rows, cols = sorted(src), sorted(tgt)
    if len(rows) * len(cols) > MAX_CELLS:
        return []
    # Blocks fit when their signatures agree: one hash per block, not a comparison per cell.
    source_sigs = [_signature(src[i]) for i in rows]
    target_sigs = [_signature(tgt[j]) for j in cols]
    if len(set(source_sigs) | set(target_sigs)) == 1:
        return []  # every block alike: an insertion could be anywhere, nothing is forced
    weight = [[(2 if i == j else 1) if sig == other else 0
               for j, other in zip(cols, target_sigs, strict=True)]
              for i, sig in zip(rows, source_sigs, strict=True)]
    return [(rows[a], cols[b]) for a, b in forced_pairs(weight, skip_identity=rows, cols=cols)]


def _signature(block: dict[tuple[str, ...], KeyView]) -> tuple[object, ...]:
    """What a block holds, in torch layout: equal signatures are blocks that fit each other."""
    found = []
    for member, view in block.items():
        if member in _IGNORED_MEMBERS:
            continue
        shape = view.info.shape
        if view.kernel:  # a TF/Keras kernel compares as the torch weight it would become
            transform = layout_change(view, _TORCH_TWIN)
            shape = shape if transform is None else transform.apply(shape)
        found.append((member, shape, is_numeric(view.info.dtype) or view.info.dtype))
    return tuple(sorted(found))


def forced_pairs(weight: list[list[int]], skip_identity: list[int] | None = None,
                 cols: list[int] | None = None) -> list[tuple[int, int]]:
    """Pairs (row, column) in every best order-preserving alignment of a weight matrix.

    With ``skip_identity``/``cols`` (the indices rows and columns stand for), pairs that keep
    their index are not checked (and not returned): only moves matter.

    An alignment that avoids the pair (a, b) leaves row a unmatched, or matches it to another
    column; with the best alignments of every prefix (``before``) and suffix (``after``), both
    are one pass over the columns, so checking a pair costs O(columns), not a new solve.
    """
    m, n = len(weight), len(weight[0]) if weight else 0
    if not m or not n or m * n > MAX_CELLS:
        return []
    after = _table(weight)
    before = _table([row[::-1] for row in weight[::-1]])[::-1]
    before = [row[::-1] for row in before]  # before[a][b]: rows[:a] with cols[:b]
    best, path = after[0][0], _path(weight, after)
    if skip_identity is not None and cols is not None:
        path = [(a, b) for a, b in path if skip_identity[a] != cols[b]]
    forced = []
    for a, b in path:
        unmatched = max(before[a][j] + after[a + 1][j] for j in range(n + 1))
        elsewhere = max((before[a][j] + weight[a][j] + after[a + 1][j + 1]
                         for j in range(n) if j != b and weight[a][j]), default=-1)
        if max(unmatched, elsewhere) < best:
            forced.append((a, b))
    return forced


def _table(weight: list[list[int]]) -> list[list[int]]:
    """``table[a][b]``: the best order-preserving alignment of rows[a:] with cols[b:]."""
    m, n = len(weight), len(weight[0])
    table = [[0] * (n + 1) for _ in range(m + 1)]
    for a in range(m - 1, -1, -1):
        row, below, weights = table[a], table[a + 1], weight[a]
        for b in range(n - 1, -1, -1):
            value = below[b] if below[b] > row[b + 1] else row[b + 1]
            w = weights[b]
            if w and below[b + 1] + w > value:
                value = below[b + 1] + w
            row[b] = value
    return table


def _path(weight: list[list[int]], table: list[list[int]]) -> list[tuple[int, int]]:
    """One best alignment, read off its table."""
    m, n = len(weight), len(weight[0])
    path: list[tuple[int, int]] = []
    a = b = 0
    while a < m and b < n:
        w = weight[a][b]
        if w and table[a][b] == table[a + 1][b + 1] + w:
            path.append((a, b))
            a, b = a + 1, b + 1
        elif table[a][b] == table[a + 1][b]:
            a += 1
        else:
            b += 1
    return path
