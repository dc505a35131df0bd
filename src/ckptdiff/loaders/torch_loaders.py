"""The torch loaders as judges: strict and non-strict ``load_state_dict`` and
``safetensors.torch.load_model``, each turning its replay (``loaders.torch_replay``) into a
verdict and a call on every key only one side has.

A tied weight stored under one name, or a stored copy of a non-persistent buffer, makes strict
``load_state_dict`` raise although nothing is lost: those are failures with a note saying how to
load. Under a loader that re-ties or ignores them they are accepted.
"""

from __future__ import annotations

from ckptdiff.loaders.common import listed
from ckptdiff.loaders.frameworks import framework_of
from ckptdiff.loaders.torch_replay import (
    TorchLoad,
    module_versions,
    replay_load_model,
    replay_load_state_dict,
)
from ckptdiff.loaders.verdict import Judgement, KeyCall, Verdict, count_phrase
from ckptdiff.manifest import Manifest

PICKLE_FORMATS = frozenset({"torch-zip", "torch-legacy", "torch-dcp", "torch-module"})
SAFETENSORS_FORMATS = frozenset({"safetensors", "safetensors-sharded"})
# safetensors dtype codes the format has and torch (2.13) does not: safetensors.torch's
# load_file raises "Dtype not understood" before load_model looks at a key.
TORCH_LACKS = frozenset({"F6_E2M3", "F6_E3M2"})


def applies_to_torch(source: Manifest, target: Manifest) -> bool:
    """A live torch model loading a torch-family checkpoint (or a snapshot of one)."""
    return target.format == "torch-module" and framework_of(source) in ("torch", None)


def _reason(load: TorchLoad, loads: bool, what: str) -> str:
    if loads:
        extra = [f"{len(load.filled)} num_batches_tracked filled in"] if load.filled else []
        extra += [f"{len(load.converted) // 2} weight-norm pair(s) converted"] if load.converted \
            else []
        extra += [f"{len(load.retied)} tied key(s) re-tied"] if load.retied else []
        return f"{what} fills every tensor" + (f" ({', '.join(extra)})" if extra else "")
    parts = []
    if load.missing:
        parts.append(f"{count_phrase(len(load.missing), 'missing key')} "
                     f"({listed(load.missing, 3)})")
    if load.unexpected:
        parts.append(f"{count_phrase(len(load.unexpected), 'unexpected key')} "
                     f"({listed(load.unexpected, 3)})")
    if load.shape:
        noun = "size mismatch" if len(load.shape) == 1 else "size mismatches"
        parts.append(f"{len(load.shape)} {noun} ({listed(load.shape, 3)})")
    return f"{what} raises: " + "; ".join(parts)


def _shared_calls(load: TorchLoad, target: Manifest, accept_harmless: bool) -> dict[str, KeyCall]:
    calls: dict[str, KeyCall] = {}
    why = ("the state dict's _metadata gives its module no version 2" if load.versioned else
           "the state dict carries no _metadata")
    for key in load.filled:
        calls[key] = KeyCall(True, f"BatchNorm's num_batches_tracked: torch fills it in ({why})")
    for key in load.unfilled:
        calls[key] = KeyCall(accept_harmless, (
            "BatchNorm's num_batches_tracked: the state dict's _metadata marks its module "
            "version 2, so torch does not fill it in; harmless: load with strict=False (the "
            "counter keeps its initial value)"))
    for old, new in load.converted.items():
        note = (f"old weight-norm key: the weight_norm parametrization converts {old} to {new} "
                "on load")
        calls[old] = calls[new] = KeyCall(True, note)
    non_persistent = set(target.metadata.get("non_persistent_buffers", ()))
    for key in load.unexpected:
        if key in non_persistent:
            calls[key] = KeyCall(accept_harmless, (
                "a stored copy of a non-persistent buffer (the model computes it): strict "
                "loading raises; harmless: drop the key or load with strict=False "
                "(from_pretrained ignores it)"))
    return calls


def judge_load_state_dict(source: Manifest, target: Manifest, strict: bool) -> Judgement:
    """``model.load_state_dict(torch.load(path, weights_only=True)[container], strict=...)``."""
    versions = None if source.format in SAFETENSORS_FORMATS else module_versions(source)
    load = replay_load_state_dict(source, target, versions)
    calls = _shared_calls(load, target, accept_harmless=not strict)
    for key, tied in load.tied.items():
        calls[key] = KeyCall(not strict, (
            f"tied to {tied}, which the checkpoint has (they share one tensor): "
            + ("strict loading names it missing; harmless: load with strict=False, or save with "
               "safetensors.torch.save_model and load with load_model (it re-ties)" if strict
               else "strict=False fills it through the shared tensor")), tied)
    if strict:
        name, call = "load_state_dict", "torch.nn.Module.load_state_dict(strict=True)"
        loads = not (load.missing or load.unexpected or load.shape)
    else:
        name, call = "load_state_dict-nonstrict", "torch.nn.Module.load_state_dict(strict=False)"
        for key in load.unexpected:
            calls.setdefault(key, KeyCall(True, "strict=False ignores it"))
        load.missing = [k for k in load.missing if k not in load.tied and k not in load.unfilled]
        loads = not (load.missing or load.shape)
        load.unexpected = []
    reason = _reason(load, loads, "load_state_dict")
    refused = source.metadata.get("weights_only_refuses") or ()
    if refused:  # the state dict never reaches load_state_dict
        loads = False
        reason = (f"torch.load(weights_only=True) raises first: its safe unpickler refuses "
                  f"{listed(list(refused), 3)} in the file (allow them with "
                  f"torch.serialization.safe_globals, or re-save the state dict); then {reason}")
    verdict = Verdict(name, call, "torch", loads, reason,
                      (*load.missing, *load.unexpected, *load.shape), refuses_file=bool(refused))
    return Judgement(verdict, calls, decides_keys=True)


def judge_load_model(source: Manifest, target: Manifest) -> Judgement:
    """``safetensors.torch.load_model(model, path, strict=True)``."""
    load = replay_load_model(source, target)
    calls = _shared_calls(load, target, accept_harmless=False)
    for key, tied in load.tied.items():
        calls[key] = KeyCall(False, f"tied to {tied}, but load_model keeps another name of the "
                             "group; harmless: load with strict=False", tied)
    for key, kept in load.retied.items():
        calls[key] = KeyCall(True, f"tied to {kept}: safetensors.torch.load_model re-ties it",
                             kept)
    for key, kept in load.duplicated.items():
        calls[key] = KeyCall(False, (
            f"stored again beside {kept}, which it is tied to: load_model keeps {kept} and "
            "reports this copy unexpected; harmless: drop it from the file"), kept)
    loads = not (load.missing or load.unexpected or load.shape)
    reason = _reason(load, loads, "load_model")
    codes = source.metadata.get("dtype_codes") or {}
    lacking = sorted(k for k, code in codes.items() if code in TORCH_LACKS)
    if lacking:  # the file never becomes a state dict
        loads = False
        kinds = sorted({codes[k] for k in lacking})
        reason = (f"safetensors.torch.load_file raises first: torch has no dtype for "
                  f"{', '.join(kinds)} ({listed(lacking, 3)}); then {reason}")
    verdict = Verdict("safetensors.load_model",
                      "safetensors.torch.load_model(model, path, strict=True)", "torch", loads,
                      reason, (*load.missing, *load.unexpected, *load.shape),
                      refuses_file=bool(lacking))
    return Judgement(verdict, calls, decides_keys=True,
                     extra_unexpected=tuple(load.duplicated))
