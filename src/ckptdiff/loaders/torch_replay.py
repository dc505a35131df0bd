"""torch's loading rules replayed on two manifests: what ``load_state_dict`` and
``safetensors.torch.load_model`` see, key by key.

Replayed from torch 2.x and safetensors 0.x code, not guessed:

- ``Module.load_state_dict`` runs each module's load pre-hooks first: the weight-norm
  parametrization (``torch.nn.utils.parametrizations.weight_norm``) registers one that turns
  ``<m>.weight_g``/``<m>.weight_v`` into ``<m>.parametrizations.weight.original0/1`` when both are
  there. BatchNorm then fills in an absent ``num_batches_tracked`` only when the state dict's
  ``_metadata`` gives its module no version or one below 2 (no ``_metadata`` at all: always).
  What is left over is missing / unexpected; a size mismatch raises even with ``strict=False``.
- ``safetensors.torch.load_model`` loads the file (no ``_metadata``) with ``strict=False``, then,
  for each group of target keys that share a storage, keeps the one name the file has (else the
  first sorted) and drops the others from ``missing``; a dropped name the file *does* store is
  reported unexpected instead. A size mismatch raises in the first step, before any of that.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ckptdiff.loaders.optimizer_slots import WEIGHT_KINDS
from ckptdiff.manifest import Manifest, TensorInfo

COUNTER = "num_batches_tracked"


@dataclass
class TorchLoad:
    """The keys one torch load call ends with (all in the target's key space but ``unexpected``)."""

    missing: list[str]
    unexpected: list[str]
    shape: list[str]
    filled: list[str] = field(default_factory=list)  # num_batches_tracked torch fills in
    unfilled: list[str] = field(default_factory=list)  # ... that _metadata keeps it from filling
    converted: dict[str, str] = field(default_factory=dict)  # weight_g/_v key -> target key
    tied: dict[str, str] = field(default_factory=dict)  # missing key -> stored key sharing it
    retied: dict[str, str] = field(default_factory=dict)  # load_model: dropped name -> kept one
    duplicated: dict[str, str] = field(default_factory=dict)  # load_model: stored twice -> kept
    versioned: bool = False  # the state dict carried _metadata


def module_versions(source: Manifest) -> Mapping[str, int] | None:
    """The state dict's ``_metadata`` versions (module prefix -> version), None without any."""
    versions = source.metadata.get("module_versions")
    if not isinstance(versions, dict):
        return None
    return {str(k): v for k, v in versions.items() if isinstance(v, int)}


def replay_load_state_dict(source: Manifest, target: Manifest,
                           versions: Mapping[str, int] | None) -> TorchLoad:
    """What ``model.load_state_dict(state)`` sees, ``state`` carrying ``versions`` as
    ``_metadata`` (None: a plain dict, as ``safetensors.torch.load_file`` returns)."""
    stored = {t.key: t for t in source.tensors if t.kind in WEIGHT_KINDS}
    expected = {t.key: t for t in target.tensors if t.kind in WEIGHT_KINDS}
    converted = _weight_norm_conversions(stored, target)
    for old, new in converted.items():
        stored[new] = stored.pop(old)
    load = TorchLoad(missing=[], unexpected=[k for k in stored if k not in expected], shape=[],
                     converted=converted, versioned=versions is not None)
    for key, info in expected.items():
        found = stored.get(key)
        if found is not None:
            if found.shape != info.shape:
                load.shape.append(key)
        elif key.rsplit(".", 1)[-1] == COUNTER:
            version = None if versions is None else versions.get(key.rpartition(".")[0])
            (load.filled if version is None or version < 2 else load.unfilled).append(key)
        else:
            load.missing.append(key)
    load.missing.extend(load.unfilled)
    for key in load.missing:
        tied = next((a for a in expected[key].aliases if a in stored), None)
        if tied is not None:
            load.tied[key] = tied
    return load


def replay_load_model(source: Manifest, target: Manifest) -> TorchLoad:
    """What ``safetensors.torch.load_model(model, path, strict=True)`` sees."""
    load = replay_load_state_dict(source, target, None)
    if load.shape:  # load_state_dict(strict=False) raises first; the re-tie step never runs
        return load
    stored = {t.key for t in source.tensors}
    missing = set(load.missing)
    for group in _shared_groups(target):
        in_file = sorted(k for k in group if k in stored)
        keep = in_file[0] if in_file else sorted(group)[0]
        for name in sorted(group - {keep}):
            if name in missing:
                missing.discard(name)
                load.retied[name] = keep
            else:
                load.unexpected.append(name)
                load.duplicated[name] = keep
    load.missing = [k for k in load.missing if k in missing]
    load.tied = {k: v for k, v in load.tied.items() if k in missing}
    return load


def _shared_groups(target: Manifest) -> list[set[str]]:
    groups: list[set[str]] = []
    seen: set[str] = set()
    for info in target.tensors:
        if info.aliases and info.key not in seen:
            group = {info.key, *info.aliases}
            seen |= group
            groups.append(group)
    return groups


def _weight_norm_conversions(stored: Mapping[str, TensorInfo],
                             target: Manifest) -> dict[str, str]:
    """Old weight-norm keys the target's load hooks convert (``weight_norm_hooks`` metadata)."""
    hooks = target.metadata.get("weight_norm_hooks")
    if not isinstance(hooks, list):
        return {}
    converted: dict[str, str] = {}
    for hook in hooks:
        if not isinstance(hook, dict):
            continue
        module, name = str(hook.get("module", "")), str(hook.get("name", "weight"))
        prefix = f"{module}." if module else ""
        g_key, v_key = f"{prefix}{name}_g", f"{prefix}{name}_v"
        if g_key in stored and v_key in stored:  # the hook converts only the pair
            converted[g_key] = f"{prefix}parametrizations.{name}.original0"
            converted[v_key] = f"{prefix}parametrizations.{name}.original1"
    return converted
