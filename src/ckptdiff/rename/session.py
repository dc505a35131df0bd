"""The rename engine's working state: open keys, pairs chosen so far, and why others stay open."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ckptdiff.manifest import TensorInfo
from ckptdiff.rename.assign import Candidate, Tie, assign
from ckptdiff.rename.explain import Step, Transform, describe
from ckptdiff.rename.keys import KeyView, make_view
from ckptdiff.rename.results import Statement, Unpaired
from ckptdiff.rename.statements import key_renames

# Reasons rank: a tie explains more than a shape near miss, which explains more than weak evidence.
_TIE, _SHAPE, _WEAK = 3, 2, 1


@dataclass
class Session:
    """Pools of open keys (unexpected or mismatched sources; missing or mismatched targets)."""

    sources: dict[str, KeyView]
    targets: dict[str, KeyView]
    source_all: Sequence[TensorInfo]
    target_all: Sequence[TensorInfo]
    chosen: list[Candidate] = field(default_factory=list)
    used_sources: set[str] = field(default_factory=set)
    used_targets: set[str] = field(default_factory=set)
    # Keys whose name already has a partner of another shape: only the index alignment moves them.
    align_only: set[tuple[bool, str]] = field(default_factory=set)
    accepted: dict[Step, tuple[int, float, int]] = field(default_factory=dict)
    notes: dict[tuple[bool, str], tuple[tuple[int, ...], Unpaired]] = field(default_factory=dict)
    hints: dict[tuple[bool, str], list[tuple[str, Step, int]]] = field(default_factory=dict)
    # Explanations already graded this round: (parts, parts, learned, step) → (steps, conf, weight)
    graded: dict[tuple[object, ...], tuple[tuple[Step, ...], float, int]] = field(
        default_factory=dict)
    _index: dict[str, list[KeyView]] | None = None

    @classmethod
    def start(cls, unexpected: Sequence[TensorInfo], missing: Sequence[TensorInfo],
              source_all: Sequence[TensorInfo] | None,
              target_all: Sequence[TensorInfo] | None) -> Session:
        """Pools from the findings, plus same-named keys whose shapes differ."""
        sources = {info.key: make_view(info) for info in unexpected}
        targets = {info.key: make_view(info) for info in missing}
        session = cls(sources, targets, source_all or list(unexpected),
                      target_all or list(missing))
        if source_all is not None and target_all is not None:
            # Same-named keys are neither missing nor unexpected: none when every target is.
            expected = {info.key: info for info in target_all if info.key not in targets}
            for info in source_all if expected else ():
                other = expected.get(info.key)
                if other is not None and other.shape != info.shape:
                    sources.setdefault(info.key, make_view(info))
                    targets.setdefault(other.key, make_view(other))
                    session.align_only.update({(True, info.key), (False, other.key)})
        return session

    def open_sources(self, learnable: bool = False) -> list[KeyView]:
        """Unpaired source views (``learnable``: also not reserved for the alignment)."""
        learnable = learnable and bool(self.align_only)  # (nothing reserved: skip the check)
        return [v for k, v in self.sources.items() if k not in self.used_sources
                and not (learnable and (True, k) in self.align_only)]

    def open_targets(self, learnable: bool = False) -> list[KeyView]:
        """Unpaired target views (``learnable``: also not reserved for the alignment)."""
        learnable = learnable and bool(self.align_only)
        return [v for k, v in self.targets.items() if k not in self.used_targets
                and not (learnable and (False, k) in self.align_only)]

    def target_index(self) -> dict[str, list[KeyView]]:
        """Every pool target by canonical key (built once; callers skip the used ones)."""
        if self._index is None:
            self._index = {}
            for view in self.targets.values():
                self._index.setdefault(view.canonical, []).append(view)
        return self._index

    def commit(self, candidates: Iterable[Candidate]) -> None:
        """Assign open candidates one-to-one; keep forced pairs, note the ties."""
        live = [c for c in candidates
                if c.source.key not in self.used_sources and c.target.key not in self.used_targets
                ] if self.used_sources or self.used_targets else list(candidates)
        chosen, ties = assign(live)
        self.chosen.extend(chosen)
        self.used_sources.update([cand.source.key for cand in chosen])
        self.used_targets.update([cand.target.key for cand in chosen])
        for tie in ties:
            self._tie(tie)

    def near_miss(self, source: KeyView, target: KeyView, steps: tuple[Step, ...],
                  transform: Transform | None) -> None:
        """Names pair up but shapes or dtypes do not."""
        s, t = source.info, target.info
        shape = list(s.shape) if transform is None else list(transform.apply(s.shape))
        after = "" if transform is None else f" after {transform.describe()}"
        what = (f"shapes differ: {shape}{after} vs {list(t.shape)}" if shape != list(t.shape)
                else f"dtypes cannot convert: {s.dtype} vs {t.dtype}")
        rule = describe(steps, None)
        self._note(True, s.key, (_SHAPE,), f"{rule} pairs it with '{t.key}', but {what}",
                   (t.key,))
        self._note(False, t.key, (_SHAPE,), f"{rule} pairs it with '{s.key}', but {what}",
                   (s.key,))
        self.align_only.update({(True, s.key), (False, t.key)})

    def weak(self, step: Step, pairs: Sequence[tuple[KeyView, KeyView]], support: int) -> None:
        """A rename the data hints at but cannot establish (reported if nothing better is)."""
        for s, t in pairs:
            self.hints.setdefault((True, s.key), []).append((t.key, step, support))
            self.hints.setdefault((False, t.key), []).append((s.key, step, support))

    def unpaired(self) -> list[Unpaired]:
        """Notes of the pool keys that stayed unpaired, sources first, in pool order."""
        for (is_source, key), hints in self.hints.items():
            if (is_source, key) not in self.notes:
                self._note(is_source, key, (_WEAK,), _hint_reason(hints),
                           tuple(sorted({other for other, _, _ in hints})))
        if not self.notes:
            return []  # (nothing to say: skip the walk over every pool key)
        out = [self.notes[(True, k)][1] for k in self.sources
               if k not in self.used_sources and (True, k) in self.notes]
        out += [self.notes[(False, k)][1] for k in self.targets
                if k not in self.used_targets and (False, k) in self.notes]
        return out

    def declined(self, is_source: bool, key: str, reason: str, candidates: tuple[str, ...],
                 readings: tuple[str, ...], statements: tuple[Statement | None, ...]) -> None:
        """A key declined as ambiguous between ``readings`` (reported unless it pairs later);
        ``statements``: the rules-file fragment stating each."""
        self._note(is_source, key, (_TIE,), reason, candidates, readings, statements)

    def refused(self, is_source: bool, key: str, reason: str, candidates: tuple[str, ...],
                readings: tuple[str, ...] = (),
                statements: tuple[Statement | None, ...] = ()) -> None:
        """A leftover pair refused: says more than a weak hint, less than a tie."""
        self._note(is_source, key, (_TIE,) if readings else (_WEAK, 1), reason, candidates,
                   readings, statements)

    def _tie(self, tie: Tie) -> None:
        others = ", ".join(f"'{k}'" for k in tie.candidates[:6])
        more = f" and {len(tie.candidates) - 6} more" if len(tie.candidates) > 6 else ""
        if len(tie.candidates) > 1:
            reason = f"equally good candidates: {others}{more}; not guessing"
            readings = tuple(f"{tie.key} → {other}" for other in tie.candidates)
            pairs = [(tie.key, other) for other in tie.candidates]
        else:
            rivals = ", ".join(f"'{k}'" for k in tie.rivals[:6])
            reason = f"its candidate {others} fits {rivals} equally well; not guessing"
            readings = tuple(f"{key} → {tie.candidates[0]}" for key in (tie.key, *tie.rivals))
            pairs = [(key, tie.candidates[0]) for key in (tie.key, *tie.rivals)]
        # The readings name the tied key first; a rule renames a source key into a target's.
        statements = tuple(key_renames([pair if tie.is_source else pair[::-1]])
                           for pair in pairs)
        self._note(tie.is_source, tie.key, (_TIE,), reason, tie.candidates, readings, statements)

    def _note(self, is_source: bool, key: str, rank: tuple[int, ...], reason: str,
              candidates: tuple[str, ...], readings: tuple[str, ...] = (),
              statements: tuple[Statement | None, ...] = ()) -> None:
        held = self.notes.get((is_source, key))
        if held is not None and held[0] >= rank:
            return
        entry = (Unpaired(key, None, reason, candidates, readings, statements) if is_source
                 else Unpaired(None, key, reason, candidates, readings, statements))
        self.notes[(is_source, key)] = (rank, entry)


def _hint_reason(hints: list[tuple[str, Step, int]]) -> str:
    """Why a key whose only candidates rest on weak evidence is left alone."""
    others = sorted({other for other, _, _ in hints})
    if len(others) > 1:
        shown = ", ".join(f"'{k}'" for k in others[:6])
        more = f" and {len(others) - 6} more" if len(others) > 6 else ""
        return (f"shapes fit several keys ({shown}{more}) but nothing in the names says which: "
                "not guessing")
    # The best-supported, most local explanation is the one worth showing.
    other, step, support = max(hints, key=lambda h: (
        h[2], ("prefix", "segment", "substitute").index(h[1].kind)))
    keys = "key supports" if support == 1 else "keys support"
    return (f"may be '{other}' ({step.describe()}, shapes fit), but only {support} {keys} that "
            "rename: not suggested")
