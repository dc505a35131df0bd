"""Live torch ``nn.Module`` targets: exactly what ``state_dict()`` would hold, built on meta."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ckptdiff.dtypes import TORCH_DTYPES, TORCH_OTHER_BITS, itemsize
from ckptdiff.errors import MissingDependencyError, UsageError
from ckptdiff.manifest import Manifest, TensorInfo
from ckptdiff.targets.spec import type_names
from ckptdiff.targets.torch.load_facts import pretrained_facts, weight_norm_hooks
from ckptdiff.targets.torch.unregistered import unregistered_tensors

_MODULE_CLASS = "torch.nn.modules.module.Module"


def is_torch_module(obj: Any) -> bool:
    """True for an ``nn.Module`` instance, without importing torch."""
    return not isinstance(obj, type) and _MODULE_CLASS in type_names(obj)


def is_torch_module_class(obj: Any) -> bool:
    """True for an ``nn.Module`` subclass, without importing torch."""
    return isinstance(obj, type) and _MODULE_CLASS in type_names(obj)


def build_torch_model(factory: Callable[..., Any], kwargs: Mapping[str, Any]) -> tuple[Any, str]:
    """Call ``factory(**kwargs)`` on the meta device (no memory for weights), else on the CPU.

    Returns the object and where it was built (``meta`` or ``cpu``).
    """
    try:
        import torch
    except ImportError:
        raise MissingDependencyError("torch", "torch", "building a torch model") from None
    try:
        with torch.device("meta"):
            return factory(**kwargs), "meta"
    except Exception:  # constructors that compute on values cannot run on meta
        pass
    try:
        return factory(**kwargs), "cpu"
    except Exception as exc:  # user code may raise anything
        name = getattr(factory, "__qualname__", repr(factory))
        raise UsageError(f"building {name}(**{dict(kwargs)!r}) failed: "
                         f"{type(exc).__name__}: {exc}") from None


def _dtype(tensor: Any) -> tuple[str, int | None]:
    name = str(tensor.dtype).removeprefix("torch.")
    if name in TORCH_DTYPES:
        dtype = TORCH_DTYPES[name]
        return dtype, itemsize(dtype)
    bits = TORCH_OTHER_BITS.get(name)
    return "other", None if bits is None else bits // 8


def torch_model_manifest(model: Any, label: str, built_on: str = "instance") -> Manifest:
    """The manifest of what ``model.load_state_dict`` expects (non-persistent buffers excluded)."""
    state = model.state_dict(keep_vars=True)
    parameters = dict(model.named_parameters(remove_duplicate=False))
    by_identity: dict[int, list[str]] = {}
    for key, value in state.items():
        if hasattr(value, "dtype") and hasattr(value, "shape"):
            by_identity.setdefault(id(value), []).append(key)
    tensors: list[TensorInfo] = []
    extra_state: list[str] = []
    for key, value in state.items():
        if not (hasattr(value, "dtype") and hasattr(value, "shape")):
            extra_state.append(key)
            continue
        dtype, size = _dtype(value)
        shape = tuple(int(d) for d in value.shape)
        is_parameter = key in parameters
        device = str(value.device)
        tensors.append(TensorInfo(
            key=key,
            shape=shape,
            dtype=dtype,
            # A meta-built model materializes on the CPU unless the user moves it.
            device="cpu" if device == "meta" else device,
            nbytes=None if size is None else size * int(value.numel()),
            aliases=tuple(k for k in by_identity[id(value)] if k != key),
            kind="parameter" if is_parameter else "buffer",
            trainable=bool(value.requires_grad) if is_parameter else False,
        ))
    non_persistent = sorted(
        f"{name}.{buffer}" if name else buffer
        for name, module in model.named_modules()
        for buffer in getattr(module, "_non_persistent_buffers_set", ())
    )
    metadata: dict[str, Any] = {
        "live_model": True,
        "model_class": f"{type(model).__module__}.{type(model).__qualname__}",
        "built_on": built_on,
        "non_persistent_buffers": non_persistent,
        "bytes_read": 0,
    }
    if extra_state:
        metadata["extra_state_keys"] = extra_state
    hooks = weight_norm_hooks(model)
    if hooks:
        metadata["weight_norm_hooks"] = hooks
    facts = pretrained_facts(model)
    if facts is not None:
        metadata["transformers"] = facts
    unregistered = unregistered_tensors(model)
    if unregistered:  # tensors state_dict() never sees (ckptdiff.diffing.unregistered)
        metadata["unregistered"] = unregistered
    return Manifest(path=label, format="torch-module", tensors=tuple(tensors), metadata=metadata)
