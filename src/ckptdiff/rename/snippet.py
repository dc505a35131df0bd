"""Rename rules and conversions as code to paste: ``revise_keys``, ``revise()``, ``convert()``.

``revise_keys`` is the form mmengine's ``load_checkpoint(..., revise_keys=...)`` takes: pairs of
(pattern, replacement) applied with ``re.sub`` to every key, in order. The snippet does the same
for a plain state dict and reorders the dimensions of the tensors whose suggestion says so.
``convert(state_dict)`` carries a small interpreter of the report's conversion ``ops``
(``torch.cat``, ``torch.stack``, ``torch.split``, ``transpose``) and lists each conversion's keys,
so it runs as pasted; beyond ``MAX_LISTED_KEYS`` keys it points to ``ckptdiff remap``.
``transformers_snippet`` writes the same mapping for transformers 5.x's ``from_pretrained``
(:mod:`ckptdiff.rename.hf_mapping`).
"""

from __future__ import annotations

from collections.abc import Collection

from ckptdiff.rename.hf_mapping import build_mapping
from ckptdiff.rename.results import Conversion, ConversionOp, Rule, Suggestion, Unpaired

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
    """The first reasons why keys were left unpaired, and how many more there are.

    Consecutive keys of one side with one reason (a LoRA adapter's eight tensors) share a line.
    """
    runs: list[list[Unpaired]] = []
    for entry in unpaired:
        last = runs[-1][-1] if runs else None
        if (last is not None and last.reason == entry.reason
                and bool(last.source_key) == bool(entry.source_key)):
            runs[-1].append(entry)
        else:
            runs.append([entry])
    lines = []
    for run in runs[:limit]:
        keys = [str(entry.source_key or entry.target_key) for entry in run]
        side = "source" if run[0].source_key else "target"
        listed = keys[0] if len(keys) == 1 else (
            ", ".join(keys) if len(keys) <= 3 else f"{', '.join(keys[:2])}, … ({len(keys)} keys)")
        lines.append(f"{side} {listed}: {run[0].reason}")
    if len(runs) > limit:
        more = sum(len(run) for run in runs[limit:])
        lines.append(f"… and {more} more (see --format json: unpaired)")
    return lines


MAX_LISTED_KEYS = 400


def _op(op: ConversionOp) -> str:
    if op.op == "concat":
        return f"('concat', {op.dim}, {op.parts})"
    if op.op == "stack":
        return f"('stack', {op.dim}, None)"
    if op.op == "chunk":
        return f"('chunk', {op.dim}, {list(op.sizes or ())})"
    if op.op == "merge_lora":
        return f"('merge_lora', {bool(op.fan_in_fan_out)}, {op.scale!r})"
    return f"('transpose', None, {tuple(op.dims or ())})"


_MERGE_LORA_LINES = (
    "            elif op == 'merge_lora':  # W + scale·B·A ((B·A)ᵀ when dim), in W's dtype",
    "                w, a, b = tensors",
    "                delta = b.float() @ a.float()",
    "                tensors = [(w.float() + arg * (delta.T if dim else delta)).to(w.dtype)]",
)


def conversion_snippet(conversions: tuple[Conversion, ...]) -> list[str]:
    """Lines of a self-contained ``convert(state_dict)``; a pointer to remap when too long."""
    if not conversions:
        return []
    keys = sum(len(c.sources) + len(c.targets) for c in conversions)
    if keys > MAX_LISTED_KEYS:
        return [f"# {len(conversions)} conversions ({keys} keys): `ckptdiff remap` writes the "
                "converted checkpoint"]
    lines = ["import torch", "", "CONVERSIONS = [  # (source keys, target keys, ops)"]
    for conversion in conversions:
        lines.append(f"    ({list(conversion.sources)!r},")
        lines.append(f"     {list(conversion.targets)!r},")
        lines.append(f"     [{', '.join(_op(op) for op in conversion.ops)}]),")
    lines += ["]", "", "",
              "def convert(state_dict):",
              '    """Stack, join and split tensors as the model expects (from ckptdiff)."""',
              "    fixed = dict(state_dict)",
              "    for sources, targets, ops in CONVERSIONS:",
              "        tensors = [fixed.pop(key) for key in sources]",
              "        for op, dim, arg in ops:",
              "            if op == 'concat':",
              "                tensors = [torch.cat(tensors[i:i + arg], dim)",
              "                           for i in range(0, len(tensors), arg)]",
              "            elif op == 'stack':",
              "                tensors = [torch.stack(tensors, dim)]",
              "            elif op == 'chunk':",
              "                tensors = list(torch.split(tensors[0], arg, dim))",
              *_MERGE_LORA_LINES * any(op.op == "merge_lora" for c in conversions
                                       for op in c.ops),
              "            else:",
              "                tensors = [t.transpose(*arg).contiguous() for t in tensors]",
              "        fixed.update(zip(targets, tensors))",
              "    return fixed",
              "",
              "# model.load_state_dict(convert(state_dict))",
              "# with renames too: revise(convert(state_dict)) (convert reads the stored names)"]
    return lines


def conversion_lines(conversions: tuple[Conversion, ...], limit: int = 8) -> list[str]:
    """One line per conversion rule and how many targets it makes, for the reports."""
    counts: dict[str, tuple[int, float, str]] = {}
    for c in conversions:
        held = counts.get(c.rule)
        example = c.targets[0] if c.target is not None else ", ".join(c.targets)
        counts[c.rule] = ((held[0] if held else 0) + 1, max(c.confidence, held[1] if held else 0),
                          held[2] if held else example)
    lines = [f"{rule}: {n} conversions (confidence {best:.2f}), e.g. → {example}"
             for rule, (n, best, example) in list(counts.items())[:limit]]
    if len(counts) > limit:
        lines.append(f"… and {len(counts) - limit} more rules (see --format json: conversions)")
    return lines


def transformers_snippet(rules: tuple[Rule, ...], suggestions: tuple[Suggestion, ...],
                         conversions: tuple[Conversion, ...], source_keys: Collection[str],
                         target_keys: Collection[str], model_class: str | None = None,
                         limit: int = 8) -> list[str]:
    """transformers 5.x code that makes ``from_pretrained`` perform the renames and conversions.

    Pure renames: a ``key_mapping`` to pass to ``from_pretrained``; with conversions, a list of
    ``WeightRenaming``/``WeightConverter`` registered for the model's class. Every rule is checked
    on ``source_keys`` as transformers applies it; what it cannot express is said in comments.
    """
    if not suggestions and not conversions:
        return []
    mapping = build_mapping(rules, suggestions, conversions, source_keys, target_keys)
    lines = [f"# not for from_pretrained: {line}" for line in mapping.refused[:limit]]
    if len(mapping.refused) > limit:
        lines.append(f"# … and {len(mapping.refused) - limit} more not for from_pretrained")
    sources = [source for source, _ in mapping.renamings]
    load = f"{model_class or 'AutoModel'}.from_pretrained(path"
    if not mapping.converters and len(set(sources)) == len(sources):
        if mapping.renamings:
            lines.append("KEY_MAPPING = {  # transformers 5.x patterns (not re.sub): "
                         "source -> target")
            lines += [f"    {literal(s)}: {literal(t)}," for s, t in mapping.renamings]
            lines += ["}", "", f"# model = {load}, key_mapping=KEY_MAPPING)"]
        return lines
    if not mapping.converters and not mapping.renamings:
        return lines
    names = sorted({op.split("(")[0] for c in mapping.converters for op in c.operations})
    kinds = ["WeightConverter"] * bool(mapping.converters) + ["WeightRenaming"] * bool(
        mapping.renamings)
    lines += ["from transformers.conversion_mapping import register_checkpoint_conversion_mapping",
              f"from transformers.core_model_loading import {', '.join(names + kinds)}", "",
              "MAPPING = [  # transformers 5.x: renamings first, then one converter per key"]
    lines += [f"    WeightRenaming({literal(s)}, {literal(t)})," for s, t in mapping.renamings]
    for converter in mapping.converters:
        patterns = ", ".join(literal(s) for s in converter.sources)
        targets = ", ".join(literal(t) for t in converter.targets)
        lines += [f"    WeightConverter([{patterns}], [{targets}],",
                  f"                    operations=[{', '.join(converter.operations)}]),"]
    lines.append("]")
    if model_class:
        lines += [f"register_checkpoint_conversion_mapping({model_class!r}, MAPPING, "
                  "overwrite=True)", "", f"# model = {load})"]
    else:
        lines += ["", "", "def register(model_class_name):",
                  '    """Load this layout into the class named (its type(model).__name__)."""',
                  "    register_checkpoint_conversion_mapping(model_class_name, MAPPING, "
                  "overwrite=True)",
                  "", '# register("LlamaForCausalLM")',
                  "# model = LlamaForCausalLM.from_pretrained(path)"]
    return lines
