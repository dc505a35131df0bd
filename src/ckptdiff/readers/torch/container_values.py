"""What checkpoint containers hold besides tensors: torch optimizer state dicts (found, and
summarized with their parameter names) and small scalar entries (``epoch``, ``global_step``).

Values come from untrusted pickles: every access checks types, text is made writable as UTF-8 and
integers too long to print are left out.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ckptdiff.readers.safety import json_int, utf8_text
from ckptdiff.readers.torch.container_walk import entries, key_text

MAX_VALUES = 32
MAX_TEXT = 200


def optimizer_states(value: object, prefix: str) -> list[tuple[str, dict[Any, Any]]]:
    """Torch optimizer state dicts at ``value``: itself, or the items of a list/dict of them."""
    if _is_optimizer_state(value):
        assert isinstance(value, dict)
        return [(prefix, value)]
    found = [(f"{prefix}.{k}" if prefix else k, v) for k, v in entries(value)
             if _is_optimizer_state(v)]
    return [(p, v) for p, v in found if isinstance(v, dict)]


def _is_optimizer_state(value: object) -> bool:
    return (isinstance(value, dict) and isinstance(value.get("state"), dict)
            and isinstance(value.get("param_groups"), list))


def is_optimizer_container(value: object) -> bool:
    """An optimizer state dict, or a list of them (Lightning's ``optimizer_states``)."""
    if isinstance(value, (list, tuple)):
        return bool(value) and all(_is_optimizer_state(item) for item in value)
    return _is_optimizer_state(value)


def optimizer_summary(prefix: str, state: dict[Any, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """A JSON summary of one optimizer state dict, and its parameter names by state id (torch
    saves ``param_names`` beside ``params`` when the optimizer was built from named params)."""
    groups = [g for g in state["param_groups"] if isinstance(g, dict)]
    params: list[list[Any]] = [_as_list(g.get("params")) for g in groups]
    slots = {key_text(slot) for entry in state["state"].values() if isinstance(entry, dict)
             for slot in entry}
    summary: dict[str, Any] = {
        "key": prefix or None, "param_groups": len(state["param_groups"]),
        "params_per_group": [len(p) for p in params], "state_entries": len(state["state"]),
        "slots": sorted(slots)[:MAX_VALUES]}
    rates = [g.get("lr") for g in groups]
    if rates and all(isinstance(r, (int, float)) and not isinstance(r, bool)
                     and math.isfinite(r) for r in rates):
        summary["lr"] = rates
    names: dict[str, str] = {}
    for group, ids in zip(groups, params, strict=True):
        group_names = group.get("param_names")
        if isinstance(group_names, list) and len(group_names) == len(ids):
            names.update((key_text(i), key_text(n)) for i, n in zip(ids, group_names, strict=True)
                         if isinstance(n, str))
    return summary, names


def _as_list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def scalar_values(top: list[tuple[str, object]],
                  scalar_value: Callable[[object], object] | None) -> dict[str, Any]:
    """Small scalar entries (``epoch``, ``global_step`` …) as JSON values, at most
    :data:`MAX_VALUES` of them, strings cut to :data:`MAX_TEXT` characters."""
    values: dict[str, Any] = {}
    for key, value in top:
        if len(values) >= MAX_VALUES:
            break
        if scalar_value is not None and not isinstance(value, (str, int, float, type(None))):
            value = scalar_value(value)
            if value is None:
                continue
        if isinstance(value, float) and not math.isfinite(value):
            values[key] = str(value)
        elif isinstance(value, bool) or value is None:
            values[key] = value
        elif isinstance(value, int):
            if json_int(value) is not None:  # else Python cannot print it as JSON
                values[key] = value
        elif isinstance(value, float):
            values[key] = value
        elif isinstance(value, str):
            values[key] = utf8_text(value[:MAX_TEXT])
    return values


def module_versions(state_dict: object) -> dict[str, int] | None:
    """A state dict's ``_metadata`` (pickled as the OrderedDict's BUILD state, kept by the
    unpickler as ``attributes``): module prefix -> ``version``; None when it has none."""
    attributes = getattr(state_dict, "attributes", None)
    metadata = attributes.get("_metadata") if isinstance(attributes, dict) else None
    if not isinstance(metadata, dict):
        return None
    versions: dict[str, int] = {}
    for prefix, entry in metadata.items():
        version = entry.get("version") if isinstance(entry, dict) else None
        if isinstance(prefix, str) and type(version) is int:
            versions[prefix] = version
    return versions
