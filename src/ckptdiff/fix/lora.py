"""The user's say on LoRA adapters when remapping or loading: merge (at a stated scale) or drop.

By default only the merges the report found confident are performed (their scale from the
``adapter_config.json`` beside the checkpoint); an adapter whose scale is unknown stays in the
output, unexpected, so that nothing is decided silently. ``drop_lora`` leaves every adapter
tensor out (the base weights load; the adapter's effect is lost); ``lora_scale`` merges every
adapter at the scale the user states. An adapter-only file (``adapter_model.safetensors``) is
merged into a base checkpoint by reading both as one source (:class:`WithAdapter`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace

from ckptdiff.diffing.report import Report
from ckptdiff.errors import UsageError
from ckptdiff.fix.remap_sources import TensorSource
from ckptdiff.fix.remap_write import Output
from ckptdiff.manifest import Manifest, TensorInfo
from ckptdiff.rename.lora import find_adapters, is_adapter_key, merge_conversion
from ckptdiff.rename.results import Conversion

STATED = 1.0  # the user's own scale: as sure as they are


def is_merge(conversion: Conversion) -> bool:
    """Whether ``conversion`` merges a LoRA adapter."""
    return any(op.op == "merge_lora" for op in conversion.ops)


def chosen_conversions(report: Report, stored: Manifest, expected: Manifest, *,
                       lora_scale: float | None = None, drop_lora: bool = False
                       ) -> tuple[list[Conversion], set[str]]:
    """The conversions to perform, and the adapter keys to leave out (``drop_lora``)."""
    if drop_lora and lora_scale is not None:
        raise UsageError("--drop-lora and --lora-scale contradict each other: choose one")
    others = [c for c in report.conversions if not is_merge(c)]
    if not drop_lora and lora_scale is None:
        return list(report.conversions), set()
    if drop_lora:
        dropped = {info.key for info in stored.tensors
                   if is_adapter_key(info.key) and info.key not in expected.by_key}
        return others, dropped
    renamed = {s.source_key: s.target_key for s in report.suggestions}
    adapters, _ = find_adapters(stored.tensors, expected.by_key, renamed)
    merges = [merge_conversion(a, expected.by_key[a.target], float(lora_scale or 0.0),
                               "stated", STATED)
              for a in adapters if a.base is not None and not a.extras]
    if not merges:
        raise UsageError("--lora-scale: no LoRA adapter here merges into a base weight of the "
                         "target")
    return others + merges, set()


def without_adapters(outputs: list[Output], adapter_keys: set[str],
                     dropped: list[str]) -> list[Output]:
    """``outputs`` less the adapter tensors the user dropped (``dropped`` says so)."""
    if not adapter_keys:
        return outputs
    dropped += [f"{o.source.key} (LoRA adapter dropped: the base weight loads without it)"
                for o in outputs if o.source.key in adapter_keys and not o.parts]
    return [o for o in outputs if o.parts or o.source.key not in adapter_keys]


def with_adapter(base: Manifest, adapter: Manifest) -> Manifest:
    """``base``'s tensors and ``adapter``'s as one manifest (an adapter-only file's keys are
    peft's ``base_model.model.…lora_A.weight``, disjoint from a base checkpoint's)."""
    if not any(is_adapter_key(info.key) for info in adapter.tensors):
        raise UsageError(f"{adapter.path}: holds no LoRA adapter (lora_A/lora_B) tensors")
    clash = sorted(set(base.by_key) & set(adapter.by_key))
    if clash:
        raise UsageError(f"{adapter.path}: its key {clash[0]} is also in {base.path}: "
                         "not an adapter-only file for it")
    return replace(base, tensors=(*base.tensors, *adapter.tensors))


class WithAdapter:
    """Bytes of a base checkpoint's tensors from it, of its adapter's from the adapter file."""

    def __init__(self, base: TensorSource, adapter: TensorSource,
                 adapter_keys: Sequence[str]) -> None:
        self.base, self.adapter, self.adapter_keys = base, adapter, set(adapter_keys)

    def chunks(self, info: TensorInfo) -> Iterator[bytes]:
        """The tensor's bytes, from the file that holds it."""
        source = self.adapter if info.key in self.adapter_keys else self.base
        return source.chunks(info)

    def close(self) -> None:
        """Close both files."""
        try:
            self.base.close()
        finally:
            self.adapter.close()
