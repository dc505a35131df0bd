"""What the user asks next: what remains once the confident fix is applied, and the verdict of
key parity (no loader).

The confident fix is the report's regex rules applied to every stored key in order, exactly what
the pasted ``revise()`` snippet does, then its confident conversions (experts stacked, fused
tensors split, LoRA adapters merged), exactly what ``remap`` performs: keys a conversion
explains are fixed, not left "unexpected". The fixed key set is judged again by the same
loader; what still fails is the outlook (``Report.after_fix``): "14 keys only need strip
prefix 'module.'; after that 2 shape mismatches remain in the head".
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from operator import attrgetter

from ckptdiff.diffing.report import Finding, FixOutlook, Rule, Suggestion
from ckptdiff.loaders.common import listed
from ckptdiff.loaders.verdict import Verdict
from ckptdiff.manifest import Manifest, TensorInfo
from ckptdiff.rename.results import Conversion
from ckptdiff.rename.rules import plain_prefix

KEY_PARITY_CALL = "key parity (no loader: same keys, same shapes)"
Rejudge = Callable[[Manifest], tuple[list[Finding], bool]]


def parity_verdict(findings: Sequence[Finding]) -> Verdict:
    """Checkpoint against checkpoint: compatible when no finding is an error."""
    errors = [f for f in findings if f.severity == "error"]
    if not errors:
        return Verdict("key-parity", KEY_PARITY_CALL, "ckptdiff", True,
                       "no finding is an error")
    # Counted and listed at C speed: a 100,000-key diff judges 200,000 errors three times.
    kinds = Counter(map(attrgetter("kind"), errors))  # (in order of first occurrence)
    keys = list(map(attrgetter("key"), errors))
    counts = ", ".join(f"{n} {kind}" for kind, n in kinds.items())
    noun = "error finding" if len(errors) == 1 else "error findings"
    return Verdict("key-parity", KEY_PARITY_CALL, "ckptdiff", False,
                   f"{len(errors)} {noun}: {counts} ({listed(keys, 3)})",
                   tuple(dict.fromkeys(keys)))


def _revise(rules: Sequence[Rule]) -> Callable[[str], str]:
    if len(rules) == 1 and (head := plain_prefix(rules[0].pattern, rules[0].replacement)):
        old, new = head  # (``^module\.`` → ''): str methods beat the regex engine
        cut = len(old)

        def swap_prefix(key: str) -> str:
            return new + key[cut:] if key.startswith(old) else key

        return swap_prefix
    compiled = [(re.compile(r.pattern), r.replacement) for r in rules]

    def revise(key: str) -> str:
        for pattern, replacement in compiled:
            key = pattern.sub(replacement, key)
        return key

    return revise


def _renamed(info: TensorInfo, key: str, aliases: tuple[str, ...]) -> TensorInfo:
    """``info`` under its fixed key. Its fields were checked when it was built, so the copy
    skips ``dataclasses.replace`` (a rebuilt ``__init__`` per tensor: 3 s of a 100,000-key
    diff) and takes the fields in one update, as ``TensorInfo.from_dict`` does."""
    if key == info.key and aliases == info.aliases:
        return info
    copy = object.__new__(TensorInfo)
    copy.__dict__.update(info.__dict__, key=key, aliases=aliases)
    return copy


def after_fix(source: Manifest, target: Manifest, rules: Sequence[Rule],
              suggestions: Sequence[Suggestion], rejudge: Rejudge,
              conversions: Sequence[Conversion] = ()) -> FixOutlook | None:
    """The outlook after applying ``rules`` and ``conversions`` to ``source`` (what ``remap``
    writes); None when there is neither."""
    if not rules and not conversions:
        return None
    revise = _revise(rules)
    # A conversion reads stored keys and writes the model's: its parts leave the fixed copy, its
    # results join it. The solver fitted each result's shape to that target exactly (the sizes
    # add up), so the target's shape is the result's; the dtype stays the parts' (remap keeps it).
    consumed = {key for c in conversions for key in c.sources}
    renamed: dict[str, TensorInfo] = {}
    for info in source.tensors:  # a later key wins where two land on one, as revise() does
        if info.key in consumed:
            continue
        key = revise(info.key)
        aliases = tuple(revise(a) for a in info.aliases) if info.aliases else ()
        renamed[key] = _renamed(info, key, aliases)
    for conversion in conversions:
        part = source.by_key.get(conversion.sources[0])
        for key in conversion.targets:
            wanted = target.by_key.get(key)
            if part is not None and wanted is not None:
                renamed[key] = _converted(part, key, wanted.shape)
    fixed = replace(source, tensors=tuple(renamed.values()))
    fixed.__dict__["by_key"] = renamed  # (its ``by_key``, as that cached property would build it)
    findings, loads = rejudge(fixed)
    remaining = tuple(f for f in findings if f.severity == "error")
    fix = "; ".join(dict.fromkeys(map(attrgetter("rule"), suggestions))) or "; ".join(
        f"re.sub({r.pattern!r}, {r.replacement!r})" for r in rules)
    if conversions:
        done = "; ".join(dict.fromkeys(c.rule for c in conversions))
        fix = f"{fix}; then {done}" if fix else done
    return FixOutlook(fix=fix, renamed=len(suggestions), loads=loads, remaining=remaining,
                      converted=len(conversions))


def _converted(part: TensorInfo, key: str, shape: tuple[int, ...]) -> TensorInfo:
    """A conversion's result under its target ``key``: the first part's record (its dtype,
    device and file) with the result's ``shape``, copied as :func:`_renamed` copies."""
    copy = object.__new__(TensorInfo)
    copy.__dict__.update(part.__dict__, key=key, aliases=(), shape=shape)
    return copy
