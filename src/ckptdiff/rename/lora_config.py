"""PEFT's ``adapter_config.json``: what a LoRA adapter's scale is, as peft computes it.

peft scales a LoRA update by ``lora_alpha / r`` (``lora_alpha / sqrt(r)`` with ``use_rslora``),
per module overridden by ``rank_pattern``/``alpha_pattern`` (a pattern matches a module name
that ends with it after a dot, ``(.*\\.)?(pattern)$``, first listed first), and stores a
``Conv1D``'s weight ``[in, out]`` when ``fan_in_fan_out`` is set. The file sits beside the
adapter (``save_pretrained`` writes both into one directory); without it the scale is unknown.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONFIG_NAME = "adapter_config.json"


@dataclass(frozen=True)
class LoraSettings:
    """The fields of an ``adapter_config.json`` that decide how a LoRA adapter merges."""

    path: str
    r: int
    lora_alpha: float
    use_rslora: bool = False
    fan_in_fan_out: bool = False
    use_dora: bool = False
    lora_bias: bool = False
    rank_pattern: Mapping[str, int] = field(default_factory=dict)
    alpha_pattern: Mapping[str, float] = field(default_factory=dict)
    target_modules: tuple[str, ...] | str | None = None

    def rank_and_alpha(self, module: str) -> tuple[int, float]:
        """``r`` and ``lora_alpha`` for ``module`` (the base model's name for it), as peft picks."""
        rank = self.rank_pattern.get(_pattern(self.rank_pattern, module), self.r)
        alpha = self.alpha_pattern.get(_pattern(self.alpha_pattern, module), self.lora_alpha)
        return rank, alpha

    def scale(self, module: str) -> tuple[float, str]:
        """The merge scale of ``module`` and how it was computed (for the report)."""
        rank, alpha = self.rank_and_alpha(module)
        if self.use_rslora:
            return alpha / math.sqrt(rank), f"lora_alpha {alpha:g} / sqrt(r {rank})"
        return alpha / rank, f"lora_alpha {alpha:g} / r {rank}"

    def targets(self, module: str) -> bool | None:
        """Whether ``target_modules`` names ``module`` (None: the config does not say)."""
        wanted = self.target_modules
        if wanted is None or wanted == "all-linear":  # peft resolves all-linear by layer type
            return None
        if isinstance(wanted, str):  # peft: a string is a regex on the whole name
            return re.fullmatch(wanted, module) is not None
        return any(module == name or module.endswith("." + name) for name in wanted)


def _pattern(patterns: Mapping[str, Any], module: str) -> str:
    """peft's ``get_pattern_key``: the first pattern that ends ``module`` at a dot, else it."""
    for pattern in patterns:
        if re.match(rf"(.*\.)?({pattern})$", module):
            return pattern
    return module


def settings_of(data: Mapping[str, Any], path: str) -> LoraSettings | None:
    """The LoRA settings of a parsed ``adapter_config.json`` (None: not a LoRA config)."""
    if data.get("peft_type", "LORA") != "LORA":
        return None
    rank, alpha = data.get("r"), data.get("lora_alpha")
    if not isinstance(rank, int) or rank <= 0 or not isinstance(alpha, int | float):
        return None
    modules = data.get("target_modules")
    return LoraSettings(
        path=path, r=rank, lora_alpha=float(alpha),
        use_rslora=bool(data.get("use_rslora")), fan_in_fan_out=bool(data.get("fan_in_fan_out")),
        use_dora=bool(data.get("use_dora")), lora_bias=bool(data.get("lora_bias")),
        rank_pattern=dict(data.get("rank_pattern") or {}),
        alpha_pattern=dict(data.get("alpha_pattern") or {}),
        target_modules=modules if isinstance(modules, str) else
        tuple(modules) if isinstance(modules, list) else None)


def settings_beside(checkpoint: str) -> LoraSettings | None:
    """The LoRA settings of the ``adapter_config.json`` beside (or inside) ``checkpoint``.

    None when there is none, it is not JSON, or not a LoRA config: the scale is then unknown, and
    the report says so rather than guess.
    """
    where = Path(checkpoint)
    try:
        config = where / CONFIG_NAME if where.is_dir() else where.parent / CONFIG_NAME
        if not config.is_file():
            return None
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return settings_of(data, str(config)) if isinstance(data, dict) else None
