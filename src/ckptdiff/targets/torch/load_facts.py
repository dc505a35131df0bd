"""What a live torch model does on ``load_state_dict`` beyond matching keys, recorded in its
manifest so the loaders can replay it (``loaders.torch_replay``, ``loaders.transformers``).

- ``weight_norm_hooks``: modules whose weight-norm parametrization
  (``torch.nn.utils.parametrizations.weight_norm``) registered the load pre-hook that converts
  old ``weight_g``/``weight_v`` keys; found by the hook's function name and the parametrized
  tensor's name it closes over.
- ``transformers``: for a ``PreTrainedModel``, its class and config (so ``from_pretrained`` can be
  replayed on a rebuilt meta model, also from a snapshot), its tied keys
  (``all_tied_weights_keys``: target -> source) and the ``_keys_to_ignore_on_load_*`` patterns.
"""

from __future__ import annotations

from typing import Any

from ckptdiff.targets.spec import type_names

_HOOK_NAME = "_weight_norm_compat_hook"
_PRETRAINED = "transformers.modeling_utils.PreTrainedModel"


def weight_norm_hooks(model: Any) -> list[dict[str, str]]:
    """``[{"module": "conv", "name": "weight"}]`` for each weight-norm load hook."""
    hooks: list[dict[str, str]] = []
    for module_name, module in model.named_modules():
        for hook in getattr(module, "_load_state_dict_pre_hooks", {}).values():
            function = getattr(hook, "hook", hook)
            code = getattr(function, "__code__", None)
            if code is None or code.co_name != _HOOK_NAME:
                continue
            cells = dict(zip(code.co_freevars, function.__closure__ or (), strict=False))
            name = cells["name"].cell_contents if "name" in cells else "weight"
            hooks.append({"module": module_name, "name": str(name)})
    return hooks


def pretrained_facts(model: Any) -> dict[str, Any] | None:
    """The ``transformers`` facts of a ``PreTrainedModel``; None for any other module."""
    if _PRETRAINED not in type_names(model):
        return None
    cls = type(model)
    return {
        "class": f"{cls.__module__}:{cls.__qualname__}",
        "model_type": getattr(model.config, "model_type", None),
        "config": model.config.to_dict(),
        "tied": {str(k): str(v) for k, v in
                 (getattr(model, "all_tied_weights_keys", None) or {}).items()},
        "ignore_missing": sorted(getattr(model, "_keys_to_ignore_on_load_missing", None) or ()),
        "ignore_unexpected": sorted(
            getattr(model, "_keys_to_ignore_on_load_unexpected", None) or ()),
    }
