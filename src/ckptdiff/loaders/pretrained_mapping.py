"""Stored keys renamed and grouped the way ``from_pretrained`` does, with transformers' own
functions (``get_model_conversion_mapping``, ``rename_source_key``, each ``WeightConverter``'s
operations run on meta tensors). The loop follows ``convert_and_load_state_dict_in_model`` in
``transformers/core_model_loading.py``: keys in natural order, renamed, retried with only the
base-model prefix where the renaming lost a key the model has, then collected per target key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ckptdiff.manifest import Manifest, TensorInfo


@dataclass
class Mapped:
    """The stored keys that reach one target key, and the shape they make there (None: the
    converter failed, ``error`` says how)."""

    sources: list[str] = field(default_factory=list)
    shape: tuple[int, ...] | None = None
    operations: tuple[str, ...] = ()
    error: str | None = None


@dataclass
class MappedKeys:
    """Every stored key's fate under the model's key mapping."""

    by_target: dict[str, Mapped]
    unreached: list[str]  # renamed to a key the model does not have
    renamed: int
    converted: int


def map_keys(model: Any, stored: Sequence[TensorInfo], target: Manifest) -> MappedKeys:
    """Rename and group ``stored`` onto ``target``'s keys as ``from_pretrained`` would."""
    from transformers.conversion_mapping import get_model_conversion_mapping
    from transformers.core_model_loading import (
        WeightConverter,
        WeightRenaming,
        dot_natural_key,
        rename_source_key,
    )

    transforms = get_model_conversion_mapping(model)
    renamings = [t for t in transforms if isinstance(t, WeightRenaming)]
    converters = [t for t in transforms if isinstance(t, WeightConverter)]
    by_pattern = {p: c for c in converters for p in c.source_patterns}
    expected = {k: True for k in target.by_key}  # rename_source_key asks only `is not None`
    prefix = model.base_model_prefix
    result = MappedKeys({}, [], 0, 0)
    inputs: dict[str, dict[str, list[TensorInfo]]] = {}
    for info in sorted(stored, key=lambda t: dot_natural_key(t.key)):
        renamed, pattern = rename_source_key(info.key, renamings, converters, prefix, expected)
        if renamed not in expected and info.key in expected:
            renamed, pattern = rename_source_key(info.key, [], [], base_model_prefix=prefix,
                                                 meta_state_dict=expected)
        if renamed not in expected:
            result.unreached.append(info.key)
            continue
        group = result.by_target.setdefault(renamed, Mapped())
        group.sources.append(info.key)
        if pattern is None:
            group.shape = info.shape
            result.renamed += renamed != info.key
        else:
            inputs.setdefault(renamed, {}).setdefault(pattern, []).append(info)
            group.operations = tuple(repr(op) for op in by_pattern[pattern].operations)
    for renamed, collected in inputs.items():
        converter = by_pattern[next(iter(collected))]
        group = result.by_target[renamed]
        group.shape, group.error = _converted_shape(model, converter, collected, renamed)
        result.converted += 1
    return result


def _converted_shape(model: Any, converter: Any, collected: dict[str, list[TensorInfo]],
                     layer_name: str) -> tuple[tuple[int, ...] | None, str | None]:
    """Run the converter's operations on meta tensors of the stored shapes (one dtype: only
    shapes are asked for, and a cast is what loading does anyway)."""
    import torch

    tensors: dict[str, Any] = {
        pattern: [torch.empty(t.shape, device="meta") for t in infos]
        for pattern, infos in collected.items()}
    try:
        for op in converter.operations:
            tensors = op.convert(tensors, source_patterns=converter.source_patterns,
                                 target_patterns=converter.target_patterns,
                                 full_layer_name=layer_name, model=model, config=model.config,
                                 missing_keys=set())
    except Exception as exc:  # a converter fed an incomplete group raises its own errors
        return None, f"{type(exc).__name__}: {exc}"
    results = [v for v in tensors.values() if hasattr(v, "shape")]
    if len(results) != 1:
        return None, f"the converter made {len(results)} tensors for one key"
    return tuple(int(d) for d in results[0].shape), None
