"""``ckptdiff.load_state_dict``: load a checkpoint into a torch model, fixing confident renames.

The checkpoint is diffed against the model first; its confident rename suggestions (and kernel
layout changes) and conversions (stacked experts, fused or split projections) are applied, and
the result is diffed again. When it still does not fit, one readable
:class:`~ckptdiff.errors.IncompatibleError` carries the grouped report; nothing is loaded.
Tensors are read by ckptdiff's own byte readers (safetensors ranges, torch zip storage members,
Keras HDF5 datasets): no pickle is ever executed.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from ckptdiff.diffing.match import diff_manifests
from ckptdiff.diffing.report import Report
from ckptdiff.errors import IncompatibleError, MissingDependencyError, UsageError
from ckptdiff.fix.convert import conversion_outputs, without_parts
from ckptdiff.fix.lora import chosen_conversions, without_adapters
from ckptdiff.fix.remap import plan_outputs, produce
from ckptdiff.fix.remap_sources import open_source
from ckptdiff.fix.remap_write import Output
from ckptdiff.manifest import Manifest, TensorInfo
from ckptdiff.rename.snippet import unpaired_lines


def load_state_dict(model: Any, path: str | os.PathLike[str], strict: bool = True, *,
                    key: str | None = None, min_confidence: float = 0.0,
                    lora_scale: float | None = None, drop_lora: bool = False) -> Report:
    """Load ``path`` into the torch ``model``, applying ckptdiff's confident renames.

    LoRA adapters merge where the ``adapter_config.json`` beside ``path`` gives their scale;
    ``lora_scale`` merges every adapter at that scale, ``drop_lora`` leaves them out
    (:mod:`ckptdiff.fix.lora`).

    Returns the report of the fixed checkpoint against the model. With ``strict`` (the default),
    raises :class:`IncompatibleError` (with the grouped report) when the checkpoint still does
    not fit after the renames; with ``strict=False`` the fitting tensors load and the report says
    what did not.
    """
    from ckptdiff.readers import read
    from ckptdiff.targets.resolve import resolve
    from ckptdiff.targets.torch.module import is_torch_module

    if not is_torch_module(model):
        raise UsageError(f"load_state_dict needs a torch nn.Module, not {type(model).__name__}")
    checkpoint = Path(path)
    stored = read(checkpoint, key)
    expected = resolve(model)
    report = diff_manifests(stored, expected)
    moves = {s.source_key: (s.target_key, s.axes) for s in report.suggestions
             if s.confidence >= min_confidence}
    outputs, dropped = plan_outputs(stored, expected, moves)
    chosen, adapter_keys = chosen_conversions(report, stored, expected, lora_scale=lora_scale,
                                              drop_lora=drop_lora)
    confident = [c for c in chosen if c.confidence >= min_confidence]
    outputs = without_parts(outputs, conversion_outputs(confident, stored), dropped)
    outputs = without_adapters(outputs, adapter_keys, dropped)
    non_persistent = set(expected.metadata.get("non_persistent_buffers", ()))
    outputs = [o for o in outputs if o.key not in non_persistent]
    fixed = diff_manifests(_manifest_of(stored, outputs), expected)
    if strict and not fixed.compatible:
        renamed = sum(1 for o in outputs if o.key != o.source.key and not o.parts)
        why = "".join(f"\n  not renamed: {line}" for line in unpaired_lines(report.unpaired))
        raise IncompatibleError(f"{checkpoint} does not fit {type(model).__name__} even after "
                                f"{renamed} confident renames:\n{fixed.to_text()}{why}")
    state = _tensors(stored, checkpoint, outputs)
    for finding in fixed.findings:  # a tied weight shares the stored tensor it is tied to
        if finding.kind == "missing" and finding.tied_to in state:
            state[finding.key] = state[finding.tied_to]
    try:
        model.load_state_dict(state, strict=strict)
    except RuntimeError as exc:
        raise IncompatibleError(f"{checkpoint}: torch refused the fixed state dict: "
                                f"{str(exc).splitlines()[0]}\n{fixed.to_text()}") from None
    return fixed


def _manifest_of(stored: Manifest, outputs: list[Output]) -> Manifest:
    """What the fixed state dict holds, as a manifest (nothing is read to know it)."""
    tensors: list[TensorInfo] = []
    for out in outputs:
        stride = None if out.axes is None else out.source.stride
        tensors.append(replace(out.source, key=out.key, shape=out.shape, aliases=(),
                               stride=stride))
    return replace(stored, tensors=tuple(tensors))


def _tensors(stored: Manifest, checkpoint: Path, outputs: list[Output]) -> dict[str, Any]:
    try:
        import torch
    except ImportError:
        raise MissingDependencyError("torch", "torch", "load_state_dict") from None
    reader = open_source(stored, checkpoint)
    state: dict[str, Any] = {}
    try:
        for out in outputs:
            dtype = getattr(torch, out.source.dtype)  # vocabulary names are torch names
            raw = bytearray(b"".join(produce(reader, out)))
            state[out.key] = (torch.frombuffer(raw, dtype=dtype).reshape(out.shape) if raw
                              else torch.empty(out.shape, dtype=dtype))
    finally:
        reader.close()
    return state
