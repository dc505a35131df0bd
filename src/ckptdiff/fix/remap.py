"""``ckptdiff remap``: write a checkpoint with the confident renames and layout changes applied.

(The module is ``remapping`` because ``ckptdiff.remap`` is the public function.)

The one operation that reads weight bytes. The plan comes from the diff's suggestions (or from a
saved rules file); tensors are then copied one at a time from the source to the output, and the
written file is read back (headers only) and diffed against the target, so the result says
whether it now loads. Optimizer state and other non-model tensors are left out unless the target
expects them; a tensor that keeps its name but is displaced by a renamed one is left out too.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ckptdiff.diffing.match import diff_manifests
from ckptdiff.diffing.report import Report
from ckptdiff.errors import UsageError
from ckptdiff.fix.convert import conversion_outputs, converted_bytes, reordered, without_parts
from ckptdiff.fix.lora import WithAdapter, chosen_conversions, with_adapter, without_adapters
from ckptdiff.fix.remap_rules import rules_moves, with_rules_conversions
from ckptdiff.fix.remap_sources import TensorSource, open_source
from ckptdiff.fix.remap_write import Output, output_format, write
from ckptdiff.fix.rules_file import from_report, load
from ckptdiff.manifest import Manifest
from ckptdiff.rename.lora_config import LoraSettings, settings_beside

_NON_MODEL = ("optimizer_slot", "other")


@dataclass(frozen=True)
class RemapResult:
    """What ``remap`` wrote, and the written checkpoint diffed against the target."""

    output: str
    written: int
    renamed: int
    transformed: int
    dropped: tuple[str, ...]
    rules_path: str | None
    rules_action: str | None  # "applied", "written" or None
    report: Report
    before: Report | None = None  # the diff the renames came from (None when rules applied)
    converted: int = 0  # tensors made by conversions (stacked, joined or split)


def remap(source: str | os.PathLike[str], target: Any, output: str | os.PathLike[str], *,
          key: str | None = None, target_key: str | None = None,
          model_kwargs: Mapping[str, Any] | None = None,
          rules: str | os.PathLike[str] | None = None,
          min_confidence: float = 0.0, lora_scale: float | None = None,
          drop_lora: bool = False,
          lora_adapter: str | os.PathLike[str] | None = None) -> RemapResult:
    """Write ``output``: ``source``'s tensors renamed (and reordered) to fit ``target``.

    ``rules`` names a rules file: an existing one is applied instead of the diff's suggestions; a
    missing one is written with the rules found. Suggestions below ``min_confidence`` are skipped.
    LoRA adapters (:mod:`ckptdiff.fix.lora`): the confident merges are performed; ``drop_lora``
    leaves every adapter out, ``lora_scale`` merges each at that scale; ``lora_adapter`` names a
    PEFT adapter-only file to merge into ``source`` (the base checkpoint).
    """
    from ckptdiff.readers import read
    from ckptdiff.targets.resolve import resolve

    source_path, output_path = Path(source), Path(output)
    output_format(output_path)  # refuse a wrong output name before reading anything
    if source_path.resolve() == output_path.resolve():
        raise UsageError(f"{output_path}: would overwrite the source; choose another output")
    stored = read(source_path, key)
    base_manifest, adapter_manifest = stored, None
    lora: LoraSettings | None = None  # None: the adapter_config.json beside the source says
    if lora_adapter is not None:
        adapter_manifest = read(Path(lora_adapter))
        stored = with_adapter(stored, adapter_manifest)
        lora = settings_beside(adapter_manifest.path)
    expected = resolve(target, key=target_key, model_kwargs=model_kwargs)
    rules_path = Path(rules) if rules is not None else None
    action: str | None
    report: Report | None = None
    if rules_path is not None and rules_path.exists():
        if lora_adapter is not None:
            raise UsageError("--lora-adapter merges by the diff's plan, not by a rules file")
        if min_confidence > 0:  # (every entry of a file is applied: nothing it could filter)
            raise UsageError("--min-confidence filters the diff's suggestions, not a rules file")
        plan, action = load(rules_path), "applied"
        moves = rules_moves(plan, rules_path, stored, source_path)
    else:
        report = diff_manifests(stored, expected, lora=lora)
        plan, action = from_report(report), ("written" if rules_path is not None else None)
        moves = {s.source_key: (s.target_key, s.axes) for s in report.suggestions
                 if s.confidence >= min_confidence}
    outputs, dropped = plan_outputs(stored, expected, moves)
    if report is not None:
        chosen, adapter_keys = chosen_conversions(report, stored, expected,
                                                  lora_scale=lora_scale, drop_lora=drop_lora)
        confident = [c for c in chosen if c.confidence >= min_confidence]
        outputs = without_parts(outputs, conversion_outputs(confident, stored), dropped)
        outputs = without_adapters(outputs, adapter_keys, dropped)
    elif lora_scale is not None or drop_lora:
        raise UsageError("--lora-scale and --drop-lora act on the diff's plan, not a rules file")
    elif plan.conversions and rules_path is not None:
        outputs = with_rules_conversions(plan, rules_path, stored, outputs, dropped)
    reader = open_source(base_manifest, source_path)
    if adapter_manifest is not None:
        reader = WithAdapter(reader, open_source(adapter_manifest, Path(adapter_manifest.path)),
                             adapter_manifest.keys())
    try:
        write(output_path, outputs, lambda out: produce(reader, out),
              {"format": "pt", "ckptdiff": "remap"})
    finally:
        reader.close()
    if action == "written" and rules_path is not None:
        try:
            rules_path.write_text(plan.to_json(), encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"{rules_path}: cannot write: {exc.strerror or exc}") from None
    written = read(output_path)
    renamed = sum(1 for o in outputs if o.key != o.source.key and not o.parts)
    return RemapResult(str(output_path), len(outputs), renamed,
                       sum(1 for o in outputs if o.axes is not None), tuple(dropped),
                       None if rules_path is None else str(rules_path), action,
                       diff_manifests(written, expected), report,
                       sum(1 for o in outputs if o.parts))


def plan_outputs(stored: Manifest, expected: Manifest,
                 moves: Mapping[str, tuple[str, tuple[int, ...] | None]]
                 ) -> tuple[list[Output], list[str]]:
    """The tensors to write (renamed, reordered) and the source keys left out, with why."""
    wanted = expected.by_key
    claimed = {new for old, (new, _) in moves.items() if new != old}
    outputs: list[Output] = []
    dropped: list[str] = []
    taken: set[str] = set()
    for info in stored.tensors:
        new, axes = moves.get(info.key, (info.key, None))
        if info.kind in _NON_MODEL and new not in wanted:
            what = "optimizer state" if info.kind == "optimizer_slot" else "not a model tensor"
            dropped.append(f"{info.key} ({what})")
            continue
        if new == info.key and new in claimed:
            dropped.append(f"{info.key} (displaced by a renamed tensor)")
            continue
        if new in taken:
            dropped.append(f"{info.key} (a second tensor for {new})")
            continue
        if axes is not None and sorted(axes) != list(range(len(info.shape))):
            raise UsageError(f"transform {list(axes)} does not fit {info.key} {list(info.shape)}")
        shape = info.shape if axes is None else tuple(info.shape[a] for a in axes)
        taken.add(new)
        outputs.append(Output(new, info, shape, axes))
    return outputs, dropped


def produce(reader: TensorSource, out: Output) -> Iterator[bytes]:
    """The bytes of ``out``: a converted tensor from its parts, any other from its source."""
    if out.parts:
        return converted_bytes(reader, out)
    return output_bytes(reader.chunks(out.source), out)


def output_bytes(chunks: Iterator[bytes], out: Output) -> Iterator[bytes]:
    """The bytes of ``out`` from its source tensor's ``chunks`` (reordered when it says so)."""
    if out.axes is None:
        yield from chunks
        return
    yield reordered(b"".join(chunks), out.source.shape, out.axes, out.source.dtype)
