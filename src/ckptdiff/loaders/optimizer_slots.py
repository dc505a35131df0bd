"""Which variable each optimizer slot of a checkpoint belongs to.

TF2 and Keras readers set ``slot_of``, and so do torch readers when the optimizer saved
``param_names``. Otherwise a torch optimizer state dict only numbers its parameters: state ``i``
belongs to the ``i``-th parameter the optimizer was built over. When the optimizer holds exactly
as many parameters as the saved model and every slot's shape equals its parameter's, the optimizer
was built over ``model.parameters()`` and state ``i`` is the model's ``i``-th unique parameter;
anything else is left unattributed rather than guessed.
"""

from __future__ import annotations

from typing import Any

from ckptdiff.manifest import Manifest, TensorInfo

WEIGHT_KINDS = ("parameter", "buffer")


def slot_owners(source: Manifest, target: Manifest) -> dict[str, str]:
    """Slot key -> key of the source variable it belongs to (explicit, else torch by position)."""
    owners = {t.key: t.slot_of for t in source.tensors
              if t.kind == "optimizer_slot" and t.slot_of is not None}
    owners.update(_torch_positional_owners(source, target))
    return owners


def trained_variables(source: Manifest, target: Manifest) -> dict[str, list[str]]:
    """Source variable key -> names of the optimizer slots it has (``exp_avg``, ``momentum``)."""
    slots: dict[str, list[str]] = {}
    for slot_key, owner in slot_owners(source, target).items():
        name = slot_key.rsplit("/" if "/" in slot_key else ".", 1)[-1]
        names = slots.setdefault(owner, [])
        if name not in names:
            names.append(name)
    return slots


def optimizer_summaries(manifest: Manifest) -> list[dict[str, Any]]:
    """The torch readers' summaries of each optimizer state dict (``metadata["optimizer"]``)."""
    summaries = manifest.metadata.get("optimizer")
    if not isinstance(summaries, list):
        return []
    return [s for s in summaries if isinstance(s, dict)
            and isinstance(s.get("params_per_group"), list)]


def group_total(summary: dict[str, Any]) -> int:
    """How many parameters the optimizer's groups hold together."""
    return sum(int(n) for n in summary["params_per_group"] if isinstance(n, int))


def unique_parameters(manifest: Manifest) -> list[TensorInfo]:
    """Parameters in order, each shared (tied) tensor once: ``model.parameters()`` of a target."""
    return _first_of_each_storage([t for t in manifest.tensors if t.kind == "parameter"])


def saved_parameter_order(source: Manifest, target: Manifest) -> list[TensorInfo]:
    """The source's parameters in saved order; the target says which keys are parameters (a
    state dict does not), the reader's guess stands for keys the target lacks."""
    kinds = {t.key: t.kind for t in target.tensors}
    chosen = [t for t in source.tensors if t.kind in WEIGHT_KINDS
              and kinds.get(t.key, t.kind) == "parameter"]
    return _first_of_each_storage(chosen)


def _first_of_each_storage(tensors: list[TensorInfo]) -> list[TensorInfo]:
    seen: set[str] = set()
    unique: list[TensorInfo] = []
    for info in tensors:
        if info.key in seen:
            continue
        seen.update((info.key, *info.aliases))
        unique.append(info)
    return unique


def state_slots(source: Manifest, summary: dict[str, Any]) -> list[tuple[int, TensorInfo]]:
    """(state id, slot tensor) of one torch optimizer state dict's ``state`` entries."""
    prefix = summary.get("key")
    head = f"{prefix}.state." if isinstance(prefix, str) and prefix else "state."
    slots = []
    for info in source.tensors:
        if info.kind == "optimizer_slot" and info.key.startswith(head):
            state_id = info.key[len(head):].split(".", 1)[0]
            if state_id.isdigit():
                slots.append((int(state_id), info))
    return slots


def misplaced_slots(source: Manifest, summary: dict[str, Any],
                    parameters: list[TensorInfo]) -> list[tuple[TensorInfo, TensorInfo]]:
    """(slot, parameter) pairs whose shapes differ when state ``i`` goes to ``parameters[i]``:
    ``optimizer.load_state_dict`` accepts them, ``optimizer.step()`` then fails."""
    return [(slot, parameters[i]) for i, slot in state_slots(source, summary)
            if i < len(parameters) and slot.shape and slot.shape != parameters[i].shape]


def _torch_positional_owners(source: Manifest, target: Manifest) -> dict[str, str]:
    summaries = optimizer_summaries(source)
    if len(summaries) != 1:
        return {}
    summary = summaries[0]
    parameters = saved_parameter_order(source, target)
    if not parameters or group_total(summary) != len(parameters):
        return {}
    owners: dict[str, str] = {}
    for state_id, info in state_slots(source, summary):
        if info.slot_of is not None:
            continue
        if state_id >= len(parameters):
            return {}
        owner = parameters[state_id]
        if info.shape and info.shape != owner.shape:
            return {}  # the optimizer was not built over model.parameters(): do not guess
        owners[info.key] = owner.key
    return owners
