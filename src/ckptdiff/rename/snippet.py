"""Rename rules as code to paste: a ``revise_keys`` list and a small loading snippet.

``revise_keys`` is the form mmengine's ``load_checkpoint(..., revise_keys=...)`` takes: pairs of
(pattern, replacement) applied with ``re.sub`` to every key, in order. The snippet does the same
for a plain state dict and reorders the dimensions of the tensors whose suggestion says so.
"""

from __future__ import annotations

from ckptdiff.rename.results import Rule, Suggestion, Unpaired

# Beyond this many reordered tensors, the snippet points to ``ckptdiff remap`` instead.
MAX_LISTED_TRANSFORMS = 24


def literal(text: str) -> str:
    """A Python string literal for ``text``, raw when that reads better (regexes)."""
    if "\\" in text and '"' not in text and not text.endswith("\\") and "\n" not in text:
        return f'r"{text}"'
    return repr(text)


def revise_keys(rules: tuple[Rule, ...], name: str = "revise_keys") -> list[str]:
    """``revise_keys = [...]`` lines, one rule per line with its match count."""
    lines = [f"{name} = ["]
    for rule in rules:
        keys = "key" if rule.matches == 1 else "keys"
        lines.append(f"    ({literal(rule.pattern)}, {literal(rule.replacement)}),  "
                     f"# {rule.matches} {keys}")
    lines.append("]")
    return lines


def python_snippet(rules: tuple[Rule, ...], suggestions: tuple[Suggestion, ...]) -> list[str]:
    """A self-contained function that renames (and reorders) a state dict to fit the target."""
    if not rules:
        return []
    lines = ["import re", ""]
    lines += revise_keys(rules, "REVISE_KEYS")
    transforms = [s for s in suggestions if s.axes is not None]
    if len(transforms) > MAX_LISTED_TRANSFORMS:
        lines += [f"# {len(transforms)} tensors also need their dimensions reordered: "
                  "`ckptdiff remap` writes the fixed checkpoint"]
        transforms = []
    if transforms:
        lines.append("PERMUTE = {  # target key -> axes (TF/Keras kernel layout -> torch)")
        lines += [f"    {literal(s.target_key)}: {tuple(s.axes or ())},"
                  for s in transforms]
        lines.append("}")
    lines += ["", "", "def revise(state_dict):",
              '    """Rename a checkpoint\'s keys to what the model expects (from ckptdiff)."""',
              "    fixed = {}",
              "    for key, value in state_dict.items():",
              "        for pattern, replacement in REVISE_KEYS:",
              "            key = re.sub(pattern, replacement, key)"]
    if transforms:
        lines += ["        if key in PERMUTE:",
                  "            value = value.permute(*PERMUTE[key]).contiguous()"]
    lines += ["        fixed[key] = value",
              "    return fixed",
              "",
              "# model.load_state_dict(revise(state_dict))"]
    if len(suggestions) > sum(r.matches for r in rules):
        lines.append("# (some suggestions have no rule; `ckptdiff remap` applies them all)")
    return lines


def unpaired_lines(unpaired: tuple[Unpaired, ...], limit: int = 8) -> list[str]:
    """The first reasons why keys were left unpaired, and how many more there are."""
    lines = []
    for entry in unpaired[:limit]:
        key = entry.source_key or entry.target_key
        side = "source" if entry.source_key else "target"
        lines.append(f"{side} {key}: {entry.reason}")
    if len(unpaired) > limit:
        lines.append(f"… and {len(unpaired) - limit} more (see --format json: unpaired)")
    return lines
