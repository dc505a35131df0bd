"""Diff a source manifest against a target manifest: the findings of the contract.

Pure functions over manifests: no file I/O, no printing. ``missing`` is expected by the target
but absent from the source, ``unexpected`` is in the source but not expected; both on exact keys.
The judging loader (``loaders.judges``) decides which of them it accepts (``info``) and gives
the verdict ``compatible`` follows; without one (``loader=None``, what ``ckptdiff.fix`` uses: it
fills tied tensors itself) the key diff's own rules judge: key parity.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from ckptdiff import collector
from ckptdiff.diffing.exported import note_exporter_conventions, unpairable_keys
from ckptdiff.diffing.optimizer import (
    TRAINING_STATE_KINDS,
    TrainingStateJudge,
    optimizer_group_findings,
)
from ckptdiff.diffing.outlook import after_fix, parity_verdict
from ckptdiff.diffing.report import Finding, Report, Side, TensorSide
from ckptdiff.diffing.trainable import trainable_findings
from ckptdiff.diffing.unregistered import unregistered_findings
from ckptdiff.loaders.judges import choose
from ckptdiff.loaders.verdict import Judgement, KeyCall
from ckptdiff.manifest import Manifest, TensorInfo
from ckptdiff.records import fast_constructor
from ckptdiff.rename.lora_config import LoraSettings, settings_beside
from ckptdiff.rename.plan import plan_renames

DEFAULT_LOADER = "default"  # the pair's default loader (``loaders.judges``)

# Checks beyond the key diff, run after it: each sees both manifests and returns findings of its
# own kinds (trainable, unregistered, optimizer).
BEYOND_KEY_CHECKS = (trainable_findings, unregistered_findings, optimizer_group_findings)
# ``Finding(...)``: a 100,000-key diff builds one per missing and per unexpected key.
_finding = fast_constructor(Finding)


def diff_manifests(source: Manifest, target: Manifest, loader: str | None = None, *,
                   lora: LoraSettings | None = None) -> Report:
    """Compare ``source`` (what is stored) with ``target`` (what should load it).

    ``loader``: ``"default"`` judges by the pair's default loader, a ``--loader`` name by that
    one, None by key parity (every verdict still listed for a live target). ``lora``: how the
    source's LoRA adapters merge; by default the ``adapter_config.json`` beside the source says.
    """
    with collector.paused():  # findings, views and plans: no reference cycles among them
        return _diff_manifests(source, target, loader, lora)


def _diff_manifests(source: Manifest, target: Manifest, loader: str | None,
                    lora: LoraSettings | None) -> Report:
    judge: Judgement | None = None
    others: list[Judgement] = []
    if loader is not None:
        judge, others = choose(source, target, None if loader == DEFAULT_LOADER else loader)
    findings, matched_keys = key_findings(source, target, judge)
    # Info-level keys take part too: a renamed num_batches_tracked belongs with its siblings.
    missing = [target.by_key[f.key] for f in findings if f.kind == "missing"]
    unpairable = unpairable_keys(source)  # an exporter's anonymous names (diffing.exported)
    unexpected = [source.by_key[f.key] for f in findings if f.kind == "unexpected"
                  and f.key not in target.by_key and f.key not in unpairable]
    if lora is None and any("lora_" in info.key for info in unexpected):
        lora = settings_beside(source.path)
    plan = plan_renames(unexpected, missing, source_all=source.tensors,
                        target_all=target.tensors, lora=lora)
    findings, unpaired = note_exporter_conventions(source, findings, plan.unpaired)
    verdict = (parity_verdict(findings) if judge is None else judge.verdict).as_default()
    name = None if judge is None else judge.verdict.name
    outlook = after_fix(source, target, plan.rules, plan.suggestions,
                        lambda fixed: _judged(fixed, target, name), plan.conversions)
    return Report(
        source=Side.of(source),
        target=Side.of(target),
        matched=len(matched_keys),
        findings=tuple(with_user_names(findings, source, target)),
        suggestions=plan.suggestions,
        rules=plan.rules,
        unpaired=unpaired,
        matched_keys=tuple(matched_keys),
        verdicts=(verdict, *(j.verdict for j in others)),
        after_fix=outlook,
        conversions=plan.conversions,
    )


def with_user_names(findings: list[Finding], source: Manifest,
                    target: Manifest) -> list[Finding]:
    """``findings`` with the user-facing names of their keys where a side was keyed in its
    loader's key space (``metadata["user_keys"]``: key -> name)."""
    names = [side.metadata.get("user_keys") or {} for side in (source, target)]
    if not any(names):
        return findings
    out = []
    for finding in findings:
        pair = tuple(side_names.get(finding.key) if finding.key in manifest.by_key else None
                     for side_names, manifest in zip(names, (source, target), strict=True))
        named = (pair[0], pair[1]) if any(pair) else None
        out.append(replace(finding, names=named) if named else finding)
    return out


def _judged(source: Manifest, target: Manifest, name: str | None) -> tuple[list[Finding], bool]:
    """Findings of ``source`` (a fixed copy) under the same judge, and whether it loads."""
    judge = None if name is None else choose(source, target, name)[0]
    findings, _ = key_findings(source, target, judge)
    loads = (parity_verdict(findings) if judge is None else judge.verdict).loads
    return findings, loads


def key_findings(source: Manifest, target: Manifest,
                 judge: Judgement | None) -> tuple[list[Finding], list[str]]:
    """Every finding of ``source`` against ``target`` under ``judge``, and the matched keys."""
    src, tgt = source.by_key, target.by_key
    live = bool(target.metadata.get("live_model"))
    non_persistent = set(target.metadata.get("non_persistent_buffers", ()))
    decides = judge if judge is not None and judge.decides_keys else None

    findings: list[Finding] = []
    for info in target.tensors:
        if info.key not in src:
            findings.append(_judged_finding("missing", info, decides) if decides
                            else _missing(info, src))
    shared = len(findings) < len(target.tensors)  # (no key in common: nothing to compare)
    training_state = TrainingStateJudge(source, target)  # optimizer slots and bookkeeping
    for info in source.tensors:
        if info.key not in tgt:
            # (Training state asked first, when the tensor is some: weights never are.)
            findings.append((info.kind in TRAINING_STATE_KINDS and training_state.finding(info))
                            or (_judged_finding("unexpected", info, decides) if decides
                                else _unexpected(info, live, non_persistent)))
    if decides is not None:
        findings.extend(_judged_finding("unexpected", src[key], decides)
                        for key in decides.extra_unexpected)

    matched_keys: list[str] = []
    compared: list[Finding] = []
    for info in target.tensors if shared else ():
        stored = src.get(info.key)
        if stored is None:
            continue
        if stored.shape != info.shape:
            compared.append(_pair("shape", "error", stored, info, _shape_note(stored, info)))
        else:
            matched_keys.append(info.key)
        if stored.dtype != info.dtype:
            note = (f"stored as {stored.dtype}, the target holds {info.dtype}: "
                    "load_state_dict casts silently")
            compared.append(_pair("dtype", "warning", stored, info, note))
        if stored.device and info.device and stored.device != info.device:
            compared.append(_pair("device", "warning", stored, info, _device_note(stored, info)))
    findings.extend(compared)
    for check in BEYOND_KEY_CHECKS:
        findings.extend(check(source, target))
    return findings, matched_keys


def _judged_finding(kind: str, info: TensorInfo, judge: Judgement) -> Finding:
    call = judge.call_for(info.key) or KeyCall(False)
    side = TensorSide.of(info)
    source, target = (side, None) if kind == "unexpected" else (None, side)
    return _finding(kind, info.key, "info" if call.accepted else "error", source, target,
                   call.note, call.tied_to)


def _missing(info: TensorInfo, stored: Mapping[str, TensorInfo]) -> Finding:
    aliases = info.aliases
    tied = next((alias for alias in aliases if alias in stored), None) if aliases else None
    if tied is not None:
        note = f"tied to {tied}, which the checkpoint has: it shares that storage"
        return _finding("missing", info.key, "info", None, TensorSide.of(info), note, tied)
    if info.key.endswith("num_batches_tracked") and info.key.rsplit(".", 1)[-1] == (
            "num_batches_tracked"):
        note = "BatchNorm's num_batches_tracked: torch fills it in when it is absent"
        return _finding("missing", info.key, "info", None, TensorSide.of(info), note)
    return _finding("missing", info.key, "error", None, TensorSide.of(info))


def _unexpected(info: TensorInfo, live: bool, non_persistent: set[str]) -> Finding:
    side = TensorSide.of(info)
    if info.key in non_persistent:
        note = ("a non-persistent buffer in the target: the model computes it; "
                "strict loading rejects the stored copy, drop it from the checkpoint")
        return _finding("unexpected", info.key, "info", side, None, note)
    return _finding("unexpected", info.key, "error", side, None)


def _pair(kind: str, severity: str, stored: TensorInfo, expected: TensorInfo,
          note: str | None) -> Finding:
    return _finding(kind, expected.key, severity, TensorSide.of(stored), TensorSide.of(expected),
                   note)


def _shape_note(stored: TensorInfo, expected: TensorInfo) -> str | None:
    if len(stored.shape) == 2 and stored.shape[::-1] == expected.shape:
        return "transposed: the stored tensor is [in, out] where the target wants [out, in]"
    if sorted(stored.shape) == sorted(expected.shape) and stored.shape != expected.shape:
        return "same sizes in another order: a layout difference (e.g. HWIO vs OIHW)?"
    if len(stored.shape) == len(expected.shape):
        pairs = zip(stored.shape, expected.shape, strict=True)
        changed = [i for i, (a, b) in enumerate(pairs) if a != b]
        if len(changed) == 1:
            i = changed[0]
            return f"dim {i} is {stored.shape[i]} in the source, {expected.shape[i]} in the target"
    return None


def _device_note(stored: TensorInfo, expected: TensorInfo) -> str:
    return (f"stored on {stored.device}, the target is on {expected.device}: "
            f"torch.load needs map_location={expected.device!r} where {stored.device} is absent")
