"""Which part of an unpickled checkpoint holds the model's tensors (framework-agnostic).

Checkpoints wrap the state dict: ``{"state_dict": ..., "optimizer_states": [...], "epoch": 3}``
(Lightning), ``{"model": ..., "optimizer": ...}``, ``{"ema": ..., "model": ...}``. The rule:

1. An explicit ``key`` names a top-level key, or a dotted/slashed path into nested dicts
   (``model.ema``, ``model/ema``); an unknown key is a :class:`UsageError` listing candidates.
2. Otherwise a bare tensor reads as one tensor keyed ``tensor``; a torch optimizer state dict
   (``state`` + ``param_groups``) as optimizer slots.
3. A top-level entry with a well-known model name (:data:`MODEL_KEYS`, in that priority: a plain
   model wins over an EMA copy) that holds tensors is chosen; if it holds no tensors directly but
   wraps another well-known model entry, that one is chosen (container ``model.state_dict``).
4. Else a dict with tensors directly as values (a flat state dict), or several unnamed candidate
   entries, reads as a whole (``container_key`` null); a single unnamed candidate is chosen.

Optimizer state dicts beside the chosen container (:data:`OPTIMIZER_KEYS`, or anything shaped like
one) are read too, as optimizer slots keyed by their path (``optimizer.state.0.exp_avg``).
Tensors in nested dicts and lists flatten with ``.`` joins.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, NamedTuple, TypeGuard, TypeVar

from ckptdiff.errors import UsageError
from ckptdiff.readers.torch.container_values import (
    is_optimizer_container,
    module_versions,
    optimizer_states,
    optimizer_summary,
    scalar_values,
)
from ckptdiff.readers.torch.container_walk import Walker, entries, resolve

T = TypeVar("T")

MODEL_KEYS = ("state_dict", "model_state_dict", "model_state", "model", "module", "net",
              "network", "weights", "params", "ema", "model_ema", "ema_model", "state_dict_ema",
              "ema_state_dict")
OPTIMIZER_KEYS = frozenset({"optimizer", "optimizer_state_dict", "optimizer_state",
                            "optimizer_states", "optim", "optim_state", "opt", "optimizers"})
# Entries that hold tensors but never model weights; they are listed, not chosen automatically.
NON_MODEL_KEYS = frozenset({"callbacks", "loops", "lr_scheduler", "lr_schedulers", "scheduler",
                            "schedulers", "scaler", "grad_scaler", "amp", "rng_state",
                            "rng_states", "hyper_parameters", "hparams"})


class Found(NamedTuple, Generic[T]):
    """One tensor and its manifest key; ``slot_of`` names the parameter an optimizer slot tracks."""

    key: str
    tensor: T
    slot_of: str | None = None


class Selection(NamedTuple, Generic[T]):
    """The chosen container's tensors, the optimizer slots beside it, and metadata about both."""

    container_key: str | None
    model: tuple[Found[T], ...]
    optimizer: tuple[Found[T], ...]
    metadata: dict[str, Any]


def select_tensors(root: object, is_tensor: Callable[[object], TypeGuard[T]], key: str | None,
                   path: str, scalar_value: Callable[[object], object] | None = None,
                   ) -> Selection[T]:
    """Pick the model container of ``root`` (see the module docstring) and flatten it."""
    walker: Walker[T] = Walker(is_tensor, path)
    top = entries(root)
    optimizer_keys = [k for k, v in top if _is_optimizer_entry(k, v, walker)]
    if key is not None:
        names, chosen = _explicit(root, key, walker, top, path)
    elif is_tensor(root):
        names, chosen = None, [("tensor", root)]
    else:
        names, chosen = _automatic(root, top, optimizer_keys, walker)
    model: list[Found[T]] = []
    optimizer: list[Found[T]] = []
    summaries: list[dict[str, Any]] = []
    for prefix, value in chosen:
        if is_optimizer_container(value):
            _add_optimizer(prefix, value, walker, optimizer, summaries)
        else:
            model.extend(Found(k, t) for k, t in walker.flatten(value, prefix))
    values_by_key = dict(reversed(top))  # the first entry wins where two keys print alike
    whole_root = names is None and any(prefix == "" for prefix, _ in chosen)
    for name in [] if whole_root else optimizer_keys:
        if names is None or name != names[0]:
            _add_optimizer(name, values_by_key[name], walker, optimizer, summaries)
    walker.check_unique([f.key for f in (*model, *optimizer)])
    used = {names[0]} if names else {prefix for prefix, _ in chosen}
    metadata: dict[str, Any] = {"containers": [
        {"key": k, "tensors": walker.count(v),
         "role": "optimizer" if k in optimizer_keys else ("model" if k in used else "unused")}
        for k, v in top if not is_tensor(v) and walker.count(v)]}
    # The state dict torch.load(path)[container] returns: the chosen entry, or the whole root.
    versions = module_versions(root if names is None else chosen[0][1])
    if versions is not None:  # load_state_dict reads them (BatchNorm fills num_batches_tracked)
        metadata["module_versions"] = versions
    values = scalar_values(top, scalar_value)
    if values:
        metadata["container_values"] = values
    if summaries:
        metadata["optimizer"] = summaries
    container_key = None if names is None else ".".join(names)
    return Selection(container_key, tuple(model), tuple(optimizer), metadata)


_Chosen = tuple[list[str] | None, list[tuple[str, object]]]


def _explicit(root: object, key: str, walker: Walker[T], top: list[tuple[str, object]],
              path: str) -> _Chosen:
    found = resolve(root, key)
    candidates = ", ".join(_candidates(top, walker)[:20]) or "none (leave the key out)"
    if found is None:
        raise UsageError(
            f"{path}: no container {key!r} in the checkpoint; candidates: {candidates}")
    names, value = found
    if walker.is_tensor(value):
        raise UsageError(f"{path}: {key!r} is a single tensor, not a container; "
                         f"candidates: {candidates}")
    if not walker.count(value):
        raise UsageError(f"{path}: {key!r} holds no tensors; candidates: {candidates}")
    return names, [("", value)]


def _automatic(root: object, top: list[tuple[str, object]], optimizer_keys: list[str],
               walker: Walker[T]) -> _Chosen:
    if is_optimizer_container(root):
        return None, [("", root)]
    candidates = {k: v for k, v in reversed(top) if k not in optimizer_keys
                  and k not in NON_MODEL_KEYS and not walker.is_tensor(v) and walker.count(v)}
    preferred = next((k for k in MODEL_KEYS if k in candidates), None)
    if preferred is None and len(candidates) == 1 and not any(walker.is_tensor(v) for _, v in top):
        preferred = next(iter(candidates))
    if preferred is None:
        return None, [(k, v) for k, v in top if k not in optimizer_keys
                      and k not in NON_MODEL_KEYS and (walker.is_tensor(v) or k in candidates)]
    names, value = [preferred], candidates[preferred]
    while not any(walker.is_tensor(v) for _, v in entries(value)):
        inner = dict(reversed(entries(value)))
        deeper = next((k for k in MODEL_KEYS if k in inner and walker.count(inner[k])), None)
        if deeper is None:
            break
        names.append(deeper)
        value = inner[deeper]
    return names, [("", value)]


def _add_optimizer(prefix: str, value: object, walker: Walker[T], optimizer: list[Found[T]],
                   summaries: list[dict[str, Any]]) -> None:
    slot_names: dict[str, str] = {}
    for state_prefix, state in optimizer_states(value, prefix):
        summary, names = optimizer_summary(state_prefix, state)
        summaries.append(summary)
        head = f"{state_prefix}.state." if state_prefix else "state."
        slot_names.update({head + param: name for param, name in names.items()})
    for key, tensor in walker.flatten(value, prefix):
        owner = key.rsplit(".", 1)[0] if "." in key else ""
        optimizer.append(Found(key, tensor, slot_names.get(owner)))


def _is_optimizer_entry(key: str, value: object, walker: Walker[T]) -> bool:
    if is_optimizer_container(value):
        return True
    return key in OPTIMIZER_KEYS and not walker.is_tensor(value) and walker.count(value) > 0


def _candidates(top: list[tuple[str, object]], walker: Walker[T]) -> list[str]:
    names: list[str] = []
    for key, value in top:
        if walker.is_tensor(value) or not walker.count(value):
            continue
        names.append(key)
        names.extend(f"{key}.{k}" for k, v in entries(value)
                     if k in MODEL_KEYS and not walker.is_tensor(v) and walker.count(v))
    return names
