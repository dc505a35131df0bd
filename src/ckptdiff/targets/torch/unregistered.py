"""Tensors a torch model holds outside its registered state: what ``state_dict()`` never sees.

``nn.Module.__setattr__`` registers ``nn.Parameter`` and ``nn.Module`` values; everything else is
a plain attribute. So a tensor assigned as ``self.beta = torch.randn(64, requires_grad=True)``,
tensors in a plain list or dict, and modules kept in a plain list or dict (instead of
``nn.ModuleList``/``nn.ModuleDict``) are not in ``state_dict()`` nor ``model.parameters()``: never
saved, never loaded, never updated by an optimizer over the parameters, not moved by ``.to()``.

Each one is recorded with the key it would have once registered (``blocks.0.weight``), its
Python attribute path, why it is invisible and the one-line fix. Tensors reachable from registered
state (a list that repeats a registered submodule) and attributes that hooks recompute (old-style
``weight_norm``, pruning) are not reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from ckptdiff.dtypes import TORCH_DTYPES

MAX_DEPTH = 4  # nesting of plain containers followed below one attribute
MAX_ITEMS = 10_000  # items of one container looked at (a list of data is not a list of state)
_CONSEQUENCES = ("not in state_dict() (never saved, never loaded), not in model.parameters() "
                 "(an optimizer over them skips {it}), not moved by .to()")


@dataclass
class _Walk:
    registered_tensors: set[int]
    registered_modules: set[int]
    internals: frozenset[str]
    found: list[dict[str, Any]] = field(default_factory=list)
    seen: set[int] = field(default_factory=set)


def unregistered_tensors(model: Any) -> list[dict[str, Any]]:
    """Records (JSON-ready) of the tensors ``model`` holds but never registered."""
    import torch

    walk = _Walk(
        registered_tensors={id(t) for t in model.parameters()} | {id(b) for b in model.buffers()},
        registered_modules={id(m) for m in model.modules()},
        internals=frozenset(vars(torch.nn.Module())),
    )
    _scan_tree(model, "", "model", walk)
    return walk.found


def _scan_tree(root: Any, prefix: str, attribute: str, walk: _Walk) -> None:
    for name, module in root.named_modules():
        key = _join(prefix, name)
        path = attribute + "".join(f".{part}" for part in name.split(".") if part)
        recomputed = _hook_made_attributes(module)
        for attr, value in vars(module).items():
            if attr in walk.internals or attr in recomputed:
                continue
            _scan_value(value, _join(key, attr), f"{path}.{attr}", None, attr, 0, walk)


def _scan_value(value: Any, key: str, attribute: str, container: str | None, owner_attr: str,
                depth: int, walk: _Walk) -> None:
    import torch

    if isinstance(value, torch.Tensor):
        if id(value) not in walk.registered_tensors:
            walk.registered_tensors.add(id(value))
            walk.found.append(_record(value, key, attribute, container, owner_attr))
        return
    if isinstance(value, torch.nn.Module):
        if id(value) in walk.registered_modules or container is None:
            return
        walk.registered_modules.update(id(m) for m in value.modules())
        for name, tensor in value.state_dict(keep_vars=True).items():
            if id(tensor) not in walk.registered_tensors and isinstance(tensor, torch.Tensor):
                walk.registered_tensors.add(id(tensor))
                walk.found.append(_record(tensor, _join(key, name), attribute, container,
                                          owner_attr, type(value).__name__))
        _scan_tree(value, key, attribute, walk)
        return
    if depth >= MAX_DEPTH or id(value) in walk.seen:
        return
    if isinstance(value, (list, tuple)):
        walk.seen.add(id(value))
        kind = container or ("list" if isinstance(value, list) else "tuple")
        for index, item in enumerate(value[:MAX_ITEMS]):
            _scan_value(item, _join(key, str(index)), f"{attribute}[{index}]", kind, owner_attr,
                        depth + 1, walk)
    elif isinstance(value, dict):
        walk.seen.add(id(value))
        for name, item in islice(value.items(), MAX_ITEMS):
            if isinstance(name, (str, int)) and not isinstance(name, bool):
                _scan_value(item, _join(key, str(name)), f"{attribute}[{name!r}]",
                            container or "dict", owner_attr, depth + 1, walk)


def _record(tensor: Any, key: str, attribute: str, container: str | None, owner_attr: str,
            module_class: str | None = None) -> dict[str, Any]:
    import torch

    trains = isinstance(tensor, torch.nn.Parameter) or bool(tensor.requires_grad)
    if module_class is not None:
        wrapper = "nn.ModuleDict({...})" if container == "dict" else "nn.ModuleList([...])"
        reason = (f"a {module_class} in a plain Python {container}, not a submodule: its "
                  f"tensors are {_CONSEQUENCES.format(it='them')}")
        fix = f"self.{owner_attr} = {wrapper}"
    elif container is None:
        reason = ("a plain tensor attribute, neither a parameter nor a buffer: "
                  f"{_CONSEQUENCES.format(it='it')}")
        fix = (f"self.{owner_attr} = nn.Parameter(...)" if trains else
               f"self.register_buffer({owner_attr!r}, ...) (persistent=False for a cache)")
    else:
        wrapper = "nn.ParameterDict({...})" if container == "dict" else "nn.ParameterList([...])"
        reason = f"a tensor in a plain Python {container}: {_CONSEQUENCES.format(it='it')}"
        fix = (f"self.{owner_attr} = {wrapper}" if trains else
               "register each tensor with self.register_buffer(name, tensor)")
    device = str(tensor.device)
    return {
        "key": key, "attribute": attribute,
        "shape": [int(d) for d in tensor.shape],
        "dtype": TORCH_DTYPES.get(str(tensor.dtype).removeprefix("torch."), "other"),
        "device": "cpu" if device == "meta" else device,
        "requires_grad": trains, "container": container, "reason": reason, "fix": fix,
    }


def _hook_made_attributes(module: Any) -> set[str]:
    """Attributes a forward pre-hook recomputes each call (``weight_norm``, ``prune``): plain on
    purpose, derived from registered parameters."""
    names: set[str] = set()
    for hook in getattr(module, "_forward_pre_hooks", {}).values():
        for attr in ("name", "_tensor_name"):
            value = getattr(hook, attr, None)
            if isinstance(value, str):
                names.add(value)
    return names


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name
