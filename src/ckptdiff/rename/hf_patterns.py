"""transformers 5.x's key patterns, re-enacted: how ``WeightRenaming``/``WeightConverter`` rename.

transformers (``core_model_loading.py``) does not ``re.sub`` its rules. The source patterns of a
transform become the branches of one alternation, longest first (``*.`` read as ``.*\\.``, a
pattern ending in a letter or digit made to end on a name boundary); the first match anywhere in
the key is replaced once, by ``str.replace`` of the matched text, with the first target pattern.
A target pattern is text, not a regex: its leading ``^`` and lookarounds are dropped, its first
parenthesized part becomes ``\\1``, ``\\.`` reads as ``.``, and ``\\1`` is its only substitution
(the first group inside the branch that matched). The emitter checks the code it writes against
this re-enactment on every key of the report; a test compares it with transformers itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

_LOOKAROUND = re.compile(r"\(\?.+?\)?\)")
_GROUP = re.compile(r"\(.+?\)")


def target_text(pattern: str) -> str:
    """A target pattern as transformers' ``process_target_pattern`` leaves it."""
    text = _LOOKAROUND.sub("", pattern.removeprefix("^"))
    group = _GROUP.search(text)
    if group:
        text = text.replace(group.group(0), r"\1", 1)
    return text.replace(r"\.", ".")


@dataclass
class Transform:
    """One ``WeightRenaming`` or ``WeightConverter`` as transformers compiles its patterns."""

    sources: tuple[str, ...]
    targets: tuple[str, ...]
    compiled: re.Pattern[str] = field(init=False)
    replacement: str = field(init=False)  # the first target, as transformers reads it

    def __post_init__(self) -> None:
        if any(r"\1" in s for s in self.sources) or any(t.startswith("^") for t in self.targets):
            raise ValueError("back-references and anchored targets are not re-enacted")
        branches = []
        for index, source in sorted(enumerate(self.sources), key=lambda item: -len(item[1])):
            body = source.replace("*.", r".*\.")
            if re.search(r"[a-zA-Z0-9]$", body):
                body += r"(?!\w)"
            branches.append(f"(?P<g{index}>{body})")
        self.compiled = re.compile("|".join(branches))
        self.replacement = target_text(self.targets[0])

    def rename(self, key: str) -> tuple[str, int | None]:
        """``key`` renamed, and which source pattern matched (``None``: none did)."""
        match = self.compiled.search(key)
        if match is None:
            return key, None
        # the branch that matched: its named group wraps it, so it is the last to close
        name = match.lastgroup or next(n for n, v in match.groupdict().items() if v is not None)
        replacement = self.replacement
        if r"\1" in replacement:
            captured = match.group(self.compiled.groupindex[name] + 1)
            if captured is None:
                raise ValueError(f"no group to substitute in {key!r}")
            replacement = replacement.replace(r"\1", captured)
        return key.replace(match.group(0), replacement, 1), int(name[1:])


def rename_all(key: str, renamings: list[Transform]) -> str:
    """``key`` after every renaming in turn (transformers applies them all, in order)."""
    for renaming in renamings:
        key = renaming.rename(key)[0]
    return key


def natural_key(key: str) -> list[tuple[int, str] | tuple[int, str, int] | tuple[int, int]]:
    """transformers' ``dot_natural_key``: the order in which a converter collects its tensors."""
    return [_natural_part(part) for part in key.split(".")]


@lru_cache(maxsize=8192)
def _natural_part(part: str) -> tuple[int, str] | tuple[int, str, int] | tuple[int, int]:
    if part.isdigit():
        return (0, int(part))
    text = part.rstrip("0123456789")
    digits = part[len(text):]
    return (1, text, int(digits)) if digits else (1, text)
