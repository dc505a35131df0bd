"""The ``from_pretrained`` judge: how transformers itself maps a checkpoint onto a
``PreTrainedModel``, replayed with transformers' own machinery, never a copy of its tables.

The target's manifest records the model class and its config (``metadata["transformers"]``,
from ``targets.torch.pretrained``). Judging rebuilds that model on the meta device (no memory for
weights), asks ``get_model_conversion_mapping`` for its renamings and converters, renames every
stored key with ``rename_source_key`` (which also adds or strips ``base_model_prefix``) and runs
each converter's operations on meta tensors to learn the shape it produces. What
``from_pretrained`` then does, read from ``modeling_utils``: a target key no stored key reaches
stays missing unless it is tied (``all_tied_weights_keys``, tied after loading) or matches
``_keys_to_ignore_on_load_missing``; a size mismatch raises (``ignore_mismatched_sizes=False``);
stored keys that reach nothing are only reported, so they never keep it from loading.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

from ckptdiff.errors import MissingDependencyError, UsageError
from ckptdiff.loaders.common import listed
from ckptdiff.loaders.optimizer_slots import WEIGHT_KINDS
from ckptdiff.loaders.pretrained_mapping import Mapped, map_keys
from ckptdiff.loaders.verdict import Judgement, KeyCall, Verdict, count_phrase
from ckptdiff.manifest import Manifest

CALL = "transformers.PreTrainedModel.from_pretrained(path)"


def applies_from_pretrained(source: Manifest, target: Manifest) -> bool:
    """The target is a live ``PreTrainedModel`` whose class and config the manifest recorded."""
    facts = target.metadata.get("transformers")
    return isinstance(facts, dict) and isinstance(facts.get("config"), dict)


def _meta_model(target: Manifest) -> Any:
    facts = target.metadata["transformers"]
    try:
        import torch
    except ImportError:
        raise MissingDependencyError("torch", "torch", "judging from_pretrained") from None
    module_name, _, qualname = str(facts["class"]).partition(":")
    try:
        cls: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            cls = getattr(cls, part)
        config = cls.config_class.from_dict(dict(facts["config"]))
        with torch.device("meta"):
            return cls(config)
    except Exception as exc:  # the user's model class may raise anything
        raise UsageError(f"rebuilding {qualname} to replay from_pretrained failed: "
                         f"{type(exc).__name__}: {exc}") from None


def judge_from_pretrained(source: Manifest, target: Manifest) -> Judgement:
    """``TargetClass.from_pretrained(path)`` loading ``source`` into ``target``."""
    model = _meta_model(target)
    facts = target.metadata["transformers"]
    mapped = map_keys(model, [t for t in source.tensors if t.kind in WEIGHT_KINDS], target)
    tied = {str(k): str(v) for k, v in (facts.get("tied") or {}).items()}
    ignore_missing = [re.compile(p) for p in facts.get("ignore_missing") or ()]
    ignore_unexpected = [re.compile(p) for p in facts.get("ignore_unexpected") or ()]
    calls: dict[str, KeyCall] = {}
    shape: list[str] = []
    for target_key, group in mapped.by_target.items():
        how = _how(group, target_key)
        if group.shape is not None and group.shape != target.by_key[target_key].shape:
            shape.append(target_key)
            note = (f"{how}, whose shape differs: {list(group.shape)} vs "
                    f"{list(target.by_key[target_key].shape)}: from_pretrained raises (pass "
                    "ignore_mismatched_sizes=True to reinitialise it)")
            accepted = False
        elif group.error is not None:
            shape.append(target_key)
            note, accepted = f"{how}, but the conversion fails: {group.error}", False
        else:
            note, accepted = how, True
        for key in (*group.sources, target_key):
            calls[key] = KeyCall(accepted, note)
    missing: list[str] = []
    for info in target.tensors:
        key = info.key
        if info.kind not in WEIGHT_KINDS or key in mapped.by_target:
            continue
        if key in tied:
            calls[key] = KeyCall(True, f"tied to {tied[key]}: from_pretrained ties it after "
                                 "loading", tied[key])
        elif any(p.search(key) for p in ignore_missing):
            calls[key] = KeyCall(True, "in _keys_to_ignore_on_load_missing: from_pretrained "
                                 "initialises it without a warning")
        else:
            missing.append(key)
            calls[key] = KeyCall(False, "no stored key reaches it, even through the model's "
                                 "key mapping: from_pretrained initialises it randomly")
    for key in mapped.unreached:
        silent = any(p.search(key) for p in ignore_unexpected)
        calls[key] = KeyCall(True, "in _keys_to_ignore_on_load_unexpected: from_pretrained "
                             "ignores it silently" if silent else
                             "from_pretrained ignores it (its load report lists it unexpected)")
    loads = not (missing or shape)
    if loads:
        reason = (f"from_pretrained fills every tensor ({mapped.renamed} key(s) renamed, "
                  f"{mapped.converted} converted by the {type(model).__name__} key mapping)")
    else:
        parts = [f"{count_phrase(len(missing), 'missing key')} ({listed(missing, 3)})"] \
            if missing else []
        parts += [f"{len(shape)} size mismatch(es) ({listed(shape, 3)})"] if shape else []
        reason = "from_pretrained " + ("raises: " if shape else "leaves tensors random: ") + \
            "; ".join(parts)
    verdict = Verdict("from_pretrained", CALL, "transformers", loads, reason,
                      (*missing, *shape))
    return Judgement(verdict, calls, decides_keys=True)


def _how(group: Mapped, target_key: str) -> str:
    if group.operations:
        return (f"from_pretrained converts {listed(list(group.sources), 4)} into {target_key} "
                f"({', '.join(group.operations)})")
    if group.sources and group.sources[0] != target_key:
        return f"from_pretrained renames {group.sources[0]} to {target_key}"
    return f"from_pretrained loads {target_key}"
