"""Key folding is readable and exact."""

from __future__ import annotations

import itertools

from ckptdiff.render.grouping import fold


def test_bert_style_folding() -> None:
    keys = [f"encoder.layer.{i}.attention.self.{n}.{w}"
            for i in range(12) for n in ("query", "key") for w in ("weight", "bias")]
    assert fold(keys) == [("encoder.layer.{0..11}.attention.self.{query,key}.{weight,bias}",
                           list(range(48)))]


def test_gaps_and_separators() -> None:
    keys = ["layers.0.w", "layers.2.w", "layers.3.w", "layers.4.w", "a/b/0/kernel", "a/b/1/kernel"]
    assert [p for p, _ in fold(keys)] == ["layers.{0,2..4}.w", "a/b/{0,1}/kernel"]


def test_folding_is_exact_never_inventing_keys() -> None:
    keys = ["x.0.a", "x.1.b"]  # not a product: must stay apart
    assert sorted(p for p, _ in fold(keys)) == ["x.0.a", "x.1.b"]


def test_patterns_expand_back_to_exactly_the_keys() -> None:
    keys = [f"m.{i}.{n}" for i in range(5) for n in ("w", "b") if (i, n) != (3, "b")]
    covered = []
    for pattern, indices in fold(keys):
        expanded = _expand(pattern)
        assert sorted(expanded) == sorted(keys[i] for i in indices)
        covered.extend(indices)
    assert sorted(covered) == list(range(len(keys)))


def _expand(pattern: str) -> list[str]:
    import re

    parts = re.split(r"(\{[^}]*\})", pattern)
    options = []
    for part in parts:
        if part.startswith("{"):
            values: list[str] = []
            for item in part[1:-1].split(","):
                if ".." in item:
                    a, b = item.split("..")
                    values.extend(str(n) for n in range(int(a), int(b) + 1))
                else:
                    values.append(item)
            options.append(values)
        else:
            options.append([part])
    return ["".join(c) for c in itertools.product(*options)]
