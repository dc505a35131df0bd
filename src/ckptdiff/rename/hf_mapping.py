"""The report's renames and conversions as transformers 5.x ``WeightRenaming``/``WeightConverter``.

Rules become renamings when transformers' pattern language performs them exactly (a second
``re.sub`` group becomes a lookahead: transformers substitutes only ``\\1``); otherwise each
suggestion gets one literal renaming. A conversion becomes a converter with transformers' own
operations (``MergeModulelist`` stacks, ``Concatenate`` joins, ``Chunk``/``Split`` split,
``Transpose`` swaps; transposes are moved to where transformers can run them), and so does a
rename whose tensor is permuted (its swaps, once renamed). Everything is checked on every source
key of the report as :mod:`ckptdiff.rename.hf_patterns` re-enacts transformers: keys land where
the rules put them, converters collect exactly their tensors in their order, and no other key is
touched. What cannot be expressed is said, never emitted.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from ckptdiff.rename.hf_ops import Converted, operations, reordered
from ckptdiff.rename.hf_patterns import Transform, natural_key, rename_all, target_text
from ckptdiff.rename.results import Conversion, Rule, Suggestion

# Beyond this many literal renamings, the code points to ``ckptdiff remap`` instead.
MAX_LITERAL_RENAMINGS = 64


@dataclass(frozen=True)
class HfMapping:
    """What to register with transformers, and what could not be expressed (and why)."""

    renamings: tuple[tuple[str, str], ...]
    converters: tuple[Converted, ...]
    refused: tuple[str, ...]


def build_mapping(rules: Sequence[Rule], suggestions: Sequence[Suggestion],
                  conversions: Sequence[Conversion], source_keys: Collection[str],
                  target_keys: Collection[str]) -> HfMapping:
    """The transformers mapping of the report, verified on ``source_keys``."""
    converting = {key for c in conversions for key in c.sources}
    wanted = {s.source_key: s.target_key for s in suggestions}
    keys = sorted(set(source_keys) | converting | wanted.keys())
    expected = {key: _resub(key, rules) for key in keys}
    refused: list[str] = []
    renamings = _translated(rules, expected, keys, converting, wanted)
    if renamings is None:
        renamings = [(f"^{re.escape(s)}$", t) for s, t in wanted.items()]
        if len(renamings) > MAX_LITERAL_RENAMINGS or not _holds(
                renamings, expected, keys, converting, wanted):
            refused.append(f"{len(wanted)} renames: transformers' patterns cannot perform them "
                           "(`ckptdiff remap` can)")
            renamings = []
    compiled = [Transform((s,), (t,)) for s, t in renamings]
    renamed = {key: rename_all(key, compiled) for key in keys}
    # renamed tensors whose dimensions are reordered: a converter transposes them once renamed
    permuted = [c for c in map(reordered, suggestions) if c is not None]
    converters: list[Converted] = []
    made_for: list[Converted | None] = []
    for index, conversion in enumerate((*conversions, *permuted)):
        # a permuted rename is singled out by its own name: its neighbours keep their layout
        made = operations(conversion, [renamed[k] for k in conversion.sources],
                          exact=index >= len(conversions))
        if isinstance(made, str):
            refused.append(f"{conversion.targets[0]}: {made}")
        elif made not in converters:
            converters.append(made)
        made_for.append(None if isinstance(made, str) else made)
    converters = _checked(converters, (*conversions, *permuted), renamed, set(target_keys),
                          refused)
    if len(permuted) > MAX_LITERAL_RENAMINGS or any(
            made not in converters for made in made_for[len(conversions):]):
        # renamed but not transposed would load wrong values (silently, if square): nothing
        refused.append(f"{len(permuted)} renamed tensors have their dimensions reordered, which "
                       "no transformers pattern singles out (`ckptdiff remap` can)")
        return HfMapping((), (), tuple(refused))
    return HfMapping(tuple(renamings), tuple(converters), tuple(refused))


def _resub(key: str, rules: Sequence[Rule]) -> str:
    for rule in rules:
        key = re.sub(rule.pattern, rule.replacement, key)
    return key


def _translated(rules: Sequence[Rule], expected: dict[str, str], keys: list[str],
                converting: set[str], wanted: dict[str, str]) -> list[tuple[str, str]] | None:
    """The rules in transformers' pattern language, plus literal renamings for suggestions the
    rules do not reach; ``None`` when transformers would rename some key otherwise."""
    translated = []
    for rule in rules:
        pair = _renaming(rule)
        if pair is None:
            return None
        translated.append(pair)
    compiled = [Transform((s,), (t,)) for s, t in translated]
    for source, target in wanted.items():
        now = rename_all(source, compiled)
        if now != target:
            translated.append((f"^{re.escape(now)}$", target))
            compiled.append(Transform(translated[-1][:1], translated[-1][1:]))
    return translated if _holds(translated, expected, keys, converting, wanted) else None


def _renaming(rule: Rule) -> tuple[str, str] | None:
    """One rule as (source pattern, target pattern), or ``None`` when it has no such form."""
    pattern, replacement = rule.pattern, rule.replacement
    groups = re.findall(r"\\g<(\d+)>", replacement)
    if groups == ["1", "2"] and replacement.endswith(r"\g<2>") and pattern.endswith(")$"):
        # transformers substitutes one group: the right context is looked at, not captured
        start = pattern.rfind("(")
        while start > 0 and pattern[start + 1] == "?":
            start = pattern.rfind("(", 0, start)
        if start <= 0 or pattern[start - 1] == "\\":
            return None
        pattern = f"{pattern[:start]}(?={pattern[start + 1:-2]}$)"
        replacement, groups = replacement[:-len(r"\g<2>")], ["1"]
    if groups not in ([], ["1"]) or "\\" in replacement.replace(r"\g<1>", "").replace("\\\\", ""):
        return None
    target = replacement.replace("\\\\", "\\").replace(r"\g<1>", r"\1")
    return pattern, target


def _holds(renamings: list[tuple[str, str]], expected: dict[str, str], keys: list[str],
           converting: set[str], wanted: dict[str, str]) -> bool:
    """Whether transformers, applying ``renamings``, brings each suggestion to its target and
    leaves every other key as it is or as the rules name it (conversion sources aside: their
    converters read whatever name they get)."""
    try:
        compiled = [Transform((s,), (t,)) for s, t in renamings]
        named = {key: rename_all(key, compiled) for key in keys if key not in converting}
    except (ValueError, re.error):
        return False
    return all(name == wanted[key] if key in wanted else name in (key, expected[key])
               for key, name in named.items())


def _checked(converters: list[Converted], conversions: Sequence[Conversion],
             renamed: dict[str, str], targets: set[str], refused: list[str]) -> list[Converted]:
    """The converters that collect exactly their conversions' tensors, in their order."""
    kept = list(converters)
    by_target: dict[str, list[Conversion]] = {}
    for conversion in conversions:
        by_target.setdefault(conversion.targets[0], []).append(conversion)
    while kept:
        compiled = [Transform(c.sources, c.targets) for c in kept]
        landed: dict[tuple[int, str], list[tuple[int, str]]] = {}
        stray: set[int] = set()
        for original, now in renamed.items():
            for index, transform in enumerate(compiled):
                name, part = transform.rename(now)
                if part is not None:
                    landed.setdefault((index, name), []).append((part, original))
                    break
        for (index, name), found in landed.items():
            if not _collects(kept[index], name, found, by_target.get(name, []), targets):
                stray.add(index)
        if not stray:
            return kept
        for index in sorted(stray, reverse=True):
            refused.append(f"{kept[index].targets[0]}: the converter would also collect other "
                           "keys, or in another order")
            del kept[index]
    return kept


def _collects(converter: Converted, name: str, found: list[tuple[int, str]],
              mine: list[Conversion], targets: set[str]) -> bool:
    """Whether the keys a converter instance collects under ``name`` are those of the one
    conversion ``mine`` holds (the conversions whose first target is ``name``)."""
    if len(mine) != 1 or name not in targets:
        return False
    conversion = mine[0]
    if sorted(original for _, original in found) != sorted(conversion.sources):
        return False
    parts = len(converter.sources)
    for part in range(parts):
        collected = sorted((o for p, o in found if p == part), key=natural_key)
        if collected != list(conversion.sources[part::parts]):
            return False
    texts = [target_text(t) for t in converter.targets]
    prefix, _, suffix = name.partition(texts[0])
    # Chunk names its pieces around the first target; Split sizes them by ``str.replace``
    return ([prefix + t + suffix for t in texts] == list(conversion.targets)
            and [name.replace(texts[0], t) for t in texts] == list(conversion.targets))
