"""The torch dry run: what ``model.load_state_dict`` (strict and not) and
``optimizer.load_state_dict`` would do with the checkpoint.

Replayed from torch's own rules: strict loading raises one ``RuntimeError`` listing missing keys,
unexpected keys and size mismatches (tied weights and non-persistent buffers included: torch does
not know they are harmless); ``strict=False`` still raises on a size mismatch and otherwise
returns the missing and unexpected keys; ``Tensor.copy_`` casts dtypes and moves devices
silently. BatchNorm's ``num_batches_tracked`` is filled in where the state dict's ``_metadata``
gives its module no version 2 (or there is none: safetensors, rebuilt dicts).
"""

from __future__ import annotations

from ckptdiff.loaders.common import KeySets, quoted
from ckptdiff.loaders.optimizer_slots import (
    group_total,
    misplaced_slots,
    optimizer_summaries,
    unique_parameters,
)
from ckptdiff.loaders.statement import LoadStatement
from ckptdiff.loaders.torch_loaders import SAFETENSORS_FORMATS
from ckptdiff.loaders.torch_replay import module_versions, replay_load_state_dict
from ckptdiff.manifest import Manifest


def explain_torch(source: Manifest, target: Manifest) -> list[LoadStatement]:
    """Statements for loading ``source`` into a torch model whose state is ``target``."""
    keys = KeySets.of(source, target)
    # BatchNorm fills num_batches_tracked only where the state dict's _metadata lets it, as
    # the verdict replays it (``torch_replay``): the dry run must not say otherwise.
    versions = None if source.format in SAFETENSORS_FORMATS else module_versions(source)
    filled = replay_load_state_dict(source, target, versions).filled
    missing = [k for k in keys.missing if k not in filled]
    call = f"model.load_state_dict({_state_dict_expression(source)})"
    model = str(target.metadata.get("model_class", "Module")).rsplit(".", 1)[-1]
    errors = []
    if missing:
        errors.append(f"Missing key(s) in state_dict: {quoted(missing)}.")
    if keys.unexpected:
        errors.append(f"Unexpected key(s) in state_dict: {quoted(keys.unexpected)}.")
    sizes = [f"size mismatch for {key}: copying a param with shape "
             f"torch.Size({list(source.by_key[key].shape)}) from checkpoint, the shape in current "
             f"model is torch.Size({list(target.by_key[key].shape)})." for key in keys.shape]
    harmless = _harmless(target, missing, keys.unexpected)
    filled_note = (f" {len(filled)} num_batches_tracked buffer(s) are filled in (the state dict "
                   "gives their modules no version 2)." if filled else "")
    statements = []
    if errors or sizes:
        message = (f"RuntimeError: Error(s) in loading state_dict for {model}: "
                   f"{' '.join(errors + sizes)}{harmless}")
        statements.append(LoadStatement("torch", call, "raises", message,
                                        (*missing, *keys.unexpected, *keys.shape)))
    else:
        statements.append(LoadStatement("torch", call, "loads",
                                        f"loads all {len(keys.matched)} tensors.{filled_note}"))
    statements.append(_non_strict(call, target, keys, missing, sizes, filled_note))
    statements.extend(_casts_and_moves(call, source, target, keys))
    statements.extend(_optimizer(source, target))
    return statements


def _state_dict_expression(source: Manifest) -> str:
    if source.format in ("safetensors", "safetensors-sharded"):
        return f"safetensors.torch.load_file({source.path!r})" if source.format == "safetensors" \
            else f"<the merged shards of {source.path!r}>"
    if source.format == "torch-module":
        return "source_model.state_dict()"
    entry = "".join(f"[{part!r}]" for part in (source.container_key or "").split(".") if part)
    return f"torch.load({source.path!r}){entry}"


def tied_keys(target: Manifest, missing: list[str]) -> list[str]:
    """Missing keys that share storage with a key that loads: torch names them, they load."""
    return [k for k in missing if any(alias not in missing for alias in target.by_key[k].aliases)]


def _harmless(target: Manifest, missing: list[str], unexpected: list[str]) -> str:
    tied = tied_keys(target, missing)
    non_persistent = set(target.metadata.get("non_persistent_buffers", ()))
    dropped = [k for k in unexpected if k in non_persistent]
    notes = []
    if tied:
        notes.append(f"{len(tied)} missing key(s) are tied weights that strict=False fills "
                     "through the tensor they share")
    if dropped:
        notes.append(f"{len(dropped)} unexpected key(s) are non-persistent buffers the model "
                     "computes itself")
    return f" (harmless: {'; '.join(notes)})" if notes else ""


def _non_strict(call: str, target: Manifest, keys: KeySets, missing: list[str],
                sizes: list[str], filled_note: str) -> LoadStatement:
    call = call[:-1] + ", strict=False)"
    if sizes:
        return LoadStatement("torch", call, "raises",
                             "RuntimeError even with strict=False: " + " ".join(sizes),
                             tuple(keys.shape))
    if missing or keys.unexpected:
        tied = len(tied_keys(target, missing))
        shared = f" ({tied} more share a loaded tensor)" if tied else ""
        message = (f"returns _IncompatibleKeys(missing_keys={missing}, "
                   f"unexpected_keys={keys.unexpected}): {len(missing) - tied} tensor(s) keep "
                   f"their initial values{shared}, {len(keys.unexpected)} stored tensor(s) are "
                   f"ignored.{filled_note}")
        return LoadStatement("torch", call, "partial", message, (*missing, *keys.unexpected))
    return LoadStatement("torch", call, "loads", f"loads all {len(keys.matched)} tensors and "
                         f"returns no missing or unexpected keys.{filled_note}")


def _casts_and_moves(call: str, source: Manifest, target: Manifest,
                     keys: KeySets) -> list[LoadStatement]:
    statements = []
    if keys.dtype:
        pairs = sorted({f"{source.by_key[k].dtype} → {target.by_key[k].dtype}" for k in keys.dtype})
        statements.append(LoadStatement(
            "torch", call, "casts",
            f"Tensor.copy_() casts {', '.join(pairs)} for {len(keys.dtype)} tensor(s) silently "
            "(with assign=True the model takes the stored dtype instead).", tuple(keys.dtype)))
    devices = sorted({source.by_key[k].device or "" for k in keys.device} - {""})
    if devices:
        statements.append(LoadStatement(
            "torch", f"torch.load({source.path!r})", "moves",
            f"torch.load puts {len(keys.device)} tensor(s) back on {', '.join(devices)} and raises "
            "where that device is absent (pass map_location); load_state_dict then copies them "
            "onto the model's own devices.", tuple(keys.device)))
    return statements


def _optimizer(source: Manifest, target: Manifest) -> list[LoadStatement]:
    if target.format != "torch-module":
        return []
    parameters = unique_parameters(target)
    trainable = [p for p in parameters if p.trainable]
    builds = [("model.parameters()", len(parameters))]
    if len(trainable) != len(parameters):
        builds.append(("[p for p in model.parameters() if p.requires_grad]", len(trainable)))
    statements = []
    for summary in optimizer_summaries(source):
        entry = summary.get("key") or "optimizer"
        total, groups = group_total(summary), len(summary["params_per_group"])
        sizes = "+".join(str(n) for n in summary["params_per_group"])
        for over, count in builds:
            call = (f"torch.optim.<Optimizer>({over}).load_state_dict(checkpoint[{entry!r}])")
            misplaced = misplaced_slots(source, summary, parameters) if count == len(
                parameters) else []
            if groups == 1 and total == count and misplaced:
                slot, parameter = misplaced[0]
                statements.append(LoadStatement("torch", call, "loads", (
                    f"one group of {count} parameters on both sides, so the state loads, but "
                    f"{len(misplaced)} state tensor(s) do not fit their parameter by position "
                    f"({slot.key} {list(slot.shape)} goes to {parameter.key} "
                    f"{list(parameter.shape)}): optimizer.step() then fails on the size "
                    "mismatch."), tuple(s.key for s, _ in misplaced)))
            elif groups == 1 and total == count:
                statements.append(LoadStatement("torch", call, "loads", f"one group of {count} "
                                                "parameters on both sides: the state loads."))
            elif groups == 1:
                statements.append(LoadStatement("torch", call, "raises", (
                    "ValueError: loaded state dict contains a parameter group that doesn't match "
                    f"the size of optimizer's group (saved {total}, the optimizer {count})."),
                    (str(entry),)))
            else:
                statements.append(LoadStatement("torch", call, "raises", (
                    f"ValueError: loaded state dict has a different number of parameter groups "
                    f"(saved {groups}, one here); build the optimizer with the saved "
                    f"{groups} groups ({sizes} parameters)."),
                    (str(entry),)))
    return statements
