"""The global one-to-one assignment of candidate pairs, and what it refuses to decide.

Candidates form a bipartite graph (source keys × target keys) with integer weights. Each
connected component is solved as a maximum-weight matching (Hungarian algorithm). A pair is kept
only when *every* maximum matching contains it: when another matching of equal weight leaves it
out, two candidates are equally good, and the keys involved stay unpaired with the rivals named.
Every maximum matching uses only edges that are tight under the optimal dual potentials, and two
of them differ by alternating cycles; so a matched edge can be avoided exactly when its two ends
share a strongly connected component of the tight graph oriented by the matching.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from ckptdiff.rename.explain import Step, Transform
from ckptdiff.rename.keys import KeyView

# Components bigger than this (per side) are decided by unique mutual best candidates instead.
MAX_EXACT = 60


class Candidate(NamedTuple):
    """A possible pairing, its explanation, and how strongly the evidence supports it."""

    source: KeyView
    target: KeyView
    steps: tuple[Step, ...]
    transform: Transform | None
    confidence: float
    weight: int


@dataclass(frozen=True)
class Tie:
    """A key left unpaired because several pairings are equally good."""

    key: str
    is_source: bool
    candidates: tuple[str, ...]  # keys on the other side it could have paired with
    rivals: tuple[str, ...]  # keys on its own side that want the same partner as much


def assign(candidates: Iterable[Candidate]) -> tuple[list[Candidate], list[Tie]]:
    """The pairs every maximum-weight matching agrees on, and the ties among the rest."""
    candidates = list(candidates)
    if (len({c.source.key for c in candidates}) == len(candidates)
            == len({c.target.key for c in candidates})):
        return candidates, []  # no key in two candidates (the bulk of large checkpoints)
    best: dict[tuple[str, str], Candidate] = {}
    for cand in candidates:
        pair = (cand.source.key, cand.target.key)
        held = best.get(pair)
        if held is None or (cand.weight, cand.confidence) > (held.weight, held.confidence):
            best[pair] = cand
    # A candidate whose two keys appear in no other candidate is a component of its own.
    sources = Counter(pair[0] for pair in best)
    targets = Counter(pair[1] for pair in best)
    chosen = [c for (s, t), c in best.items() if sources[s] == 1 and targets[t] == 1]
    tangled = [c for (s, t), c in best.items() if sources[s] > 1 or targets[t] > 1]
    ties: list[Tie] = []
    for component in _components(tangled):
        if len(component) == 1:
            chosen.extend(component)
            continue
        kept = _forced(component)
        chosen.extend(kept)
        ties.extend(_ties(component, kept))
    return chosen, ties


def _components(edges: list[Candidate]) -> list[list[Candidate]]:
    parent: dict[str, str] = {}

    def find(node: str) -> str:
        root = node
        while parent.get(root, root) != root:
            root = parent[root]
        while parent.get(node, node) != root:
            parent[node], node = root, parent[node]
        return root

    for edge in edges:
        a, b = find("s" + edge.source.key), find("t" + edge.target.key)
        if a != b:
            parent[a] = b
    groups: dict[str, list[Candidate]] = defaultdict(list)
    for edge in edges:
        groups[find("s" + edge.source.key)].append(edge)
    return list(groups.values())


def _forced(edges: list[Candidate]) -> list[Candidate]:
    rows = sorted({e.source.key for e in edges})
    cols = sorted({e.target.key for e in edges})
    if max(len(rows), len(cols)) > MAX_EXACT:
        return _mutual_best(edges)
    size = max(len(rows), len(cols))
    top = max(e.weight for e in edges) + 1
    row_of = {k: i for i, k in enumerate(rows)}
    col_of = {k: j for j, k in enumerate(cols)}
    cost = [[top] * size for _ in range(size)]
    by_cell: dict[tuple[int, int], Candidate] = {}
    for edge in edges:
        i, j = row_of[edge.source.key], col_of[edge.target.key]
        cost[i][j] = top - edge.weight
        by_cell[(i, j)] = edge
    match, u, v = _hungarian(cost)
    matched = [(i, j) for i, j in enumerate(match) if (i, j) in by_cell]
    tight = [(i, j) for i in range(size) for j in range(size)
             if cost[i][j] == u[i] + v[j] and match[i] != j]
    component = _scc(size, match, tight)
    return [by_cell[(i, j)] for i, j in matched if component[i] != component[size + j]]


def _hungarian(cost: list[list[int]]) -> tuple[list[int], list[int], list[int]]:
    """Minimum-cost perfect assignment of a square matrix: row → column, and dual potentials."""
    n = len(cost)
    infinity = sum(max(row) for row in cost) + 1
    u, v = [0] * (n + 1), [0] * (n + 1)
    owner, way = [0] * (n + 1), [0] * (n + 1)
    for row in range(1, n + 1):
        owner[0], col = row, 0
        slack, used = [infinity] * (n + 1), [False] * (n + 1)
        while True:
            used[col] = True
            current, delta, next_col = owner[col], infinity, 0
            for j in range(1, n + 1):
                if not used[j]:
                    reduced = cost[current - 1][j - 1] - u[current] - v[j]
                    if reduced < slack[j]:
                        slack[j], way[j] = reduced, col
                    if slack[j] < delta:
                        delta, next_col = slack[j], j
            for j in range(n + 1):
                if used[j]:
                    u[owner[j]] += delta
                    v[j] -= delta
                else:
                    slack[j] -= delta
            col = next_col
            if owner[col] == 0:
                break
        while col:
            previous = way[col]
            owner[col] = owner[previous]
            col = previous
    match = [0] * n
    for j in range(1, n + 1):
        match[owner[j] - 1] = j - 1
    return match, u[1:], v[1:]


def _scc(size: int, match: list[int], tight: list[tuple[int, int]]) -> list[int]:
    """Strongly connected components: rows 0..size-1, columns size..2*size-1."""
    arcs: list[list[int]] = [[] for _ in range(2 * size)]
    for i, j in tight:
        arcs[i].append(size + j)
    for i, j in enumerate(match):
        arcs[size + j].append(i)
    index: list[int] = [-1] * (2 * size)
    low = [0] * (2 * size)
    component = [-1] * (2 * size)
    stack: list[int] = []
    on_stack = [False] * (2 * size)
    counter = 0
    for root in range(2 * size):
        if index[root] != -1:
            continue
        work = [(root, 0)]
        while work:
            node, child = work.pop()
            if child == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack[node] = True
            if child < len(arcs[node]):
                work.append((node, child + 1))
                nxt = arcs[node][child]
                if index[nxt] == -1:
                    work.append((nxt, 0))
                elif on_stack[nxt]:
                    low[node] = min(low[node], index[nxt])
                continue
            if low[node] == index[node]:
                while True:
                    member = stack.pop()
                    on_stack[member] = False
                    component[member] = node
                    if member == node:
                        break
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return component


def _mutual_best(edges: list[Candidate]) -> list[Candidate]:
    by_source: dict[str, list[Candidate]] = defaultdict(list)
    by_target: dict[str, list[Candidate]] = defaultdict(list)
    for edge in edges:
        by_source[edge.source.key].append(edge)
        by_target[edge.target.key].append(edge)
    return [e for e in edges
            if _unique_best(by_source[e.source.key]) is e
            and _unique_best(by_target[e.target.key]) is e]


def _unique_best(edges: Sequence[Candidate]) -> Candidate | None:
    top = max(e.weight for e in edges)
    best = [e for e in edges if e.weight == top]
    return best[0] if len(best) == 1 else None


def _ties(edges: list[Candidate], kept: list[Candidate]) -> list[Tie]:
    paired_sources = {e.source.key for e in kept}
    paired_targets = {e.target.key for e in kept}
    open_edges = [e for e in edges
                  if e.source.key not in paired_sources and e.target.key not in paired_targets]
    by_source: dict[str, list[Candidate]] = defaultdict(list)
    by_target: dict[str, list[Candidate]] = defaultdict(list)
    for edge in open_edges:
        by_source[edge.source.key].append(edge)
        by_target[edge.target.key].append(edge)
    ties: list[Tie] = []
    for key, mine in sorted(by_source.items()):
        top = [e for e in mine if e.weight == max(x.weight for x in mine)]
        partners = tuple(sorted({e.target.key for e in top}))
        rivals = tuple(sorted({e.source.key for p in partners for e in by_target[p]} - {key}))
        ties.append(Tie(key, True, partners, rivals))
    for key, mine in sorted(by_target.items()):
        top = [e for e in mine if e.weight == max(x.weight for x in mine)]
        partners = tuple(sorted({e.source.key for e in top}))
        rivals = tuple(sorted({e.target.key for p in partners for e in by_source[p]} - {key}))
        ties.append(Tie(key, False, partners, rivals))
    return ties
