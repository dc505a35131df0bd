"""``model.load_weights(path)`` for Keras 3 ``.weights.h5``/``.keras`` files, as a judge.

Both sides are keyed by saving path (``targets.keras.keyspace``). Keras 3.15's
``saving_lib.load_weights_only`` walks the model and, for each saveable, hands
``load_own_variables`` the file's group at the saveable's path (an empty one when the file has
none): ``Layer._check_load_own_variables`` fails the layer when the counts differ, ``assign``
fails it when a shape differs (dtypes are cast). Every failure is collected and, at the end,
raised as one ``ValueError`` ("A total of N objects could not be loaded"); with
``skip_mismatch=True`` it is only a warning and the failed layers keep their initial values,
which counts as failing here. Groups the model does not ask for are never read: leftover layers
in the file are accepted.
"""

from __future__ import annotations

from collections.abc import Mapping

from ckptdiff.loaders.common import listed
from ckptdiff.loaders.verdict import Judgement, KeyCall, Verdict, count_phrase
from ckptdiff.manifest import Manifest, TensorInfo
from ckptdiff.targets.keras.keyspace import SAVED_PATH

_WEIGHT_KINDS = ("parameter", "buffer")
Layers = dict[str, dict[str, TensorInfo]]  # layer path -> {variable index: tensor}


def applies_load_weights(source: Manifest, target: Manifest) -> bool:
    """A Keras 3 file against a live model keyed by saving path."""
    return target.metadata.get("key_space") == SAVED_PATH == source.metadata.get("key_space")


def _layers(manifest: Manifest) -> Layers:
    layers: Layers = {}
    for info in manifest.tensors:
        if info.kind not in _WEIGHT_KINDS:
            continue
        key = info.key
        layer, _, index = ("", "", key[len("vars/"):]) if key.startswith("vars/") else (
            key.rpartition("/vars/"))
        layers.setdefault(layer, {})[index] = info
    return layers


def layer_name(target: Manifest, variables: Mapping[str, TensorInfo]) -> str:
    """The layer's name in Keras messages, from a variable's user key (``enc/d2/kernel``, or
    positional where ckptdiff cannot name the variable: ``head/vars/0``)."""
    user_keys = target.metadata.get("user_keys") or {}
    key = str(user_keys.get(next(iter(variables.values())).key, ""))
    chain = key.rpartition("/vars/")[0] if "/vars/" in key else key.rpartition("/")[0]
    return chain.rsplit("/", 1)[-1] if chain else "model"


def judge_load_weights(source: Manifest, target: Manifest, skip_mismatch: bool) -> Judgement:
    """What ``model.load_weights(source)`` (``skip_mismatch`` or not) does with ``target``."""
    stored, expected = _layers(source), _layers(target)
    failed: list[str] = []  # Keras' message per failed layer
    keys: list[str] = []  # the keys of the findings that make it fail
    calls: dict[str, KeyCall] = {}
    unfilled = 0
    for path, variables in expected.items():
        found = stored.get(path, {})
        name = layer_name(target, variables)
        if set(found) != set(variables):
            failed.append(f"Layer '{name}' expected {len(variables)} variables, but received "
                          f"{len(found)} variables during loading")
            note = (f"load_weights reads layer '{name}' from group {path or '/'}: it expects "
                    f"{len(variables)} variables there, the file has {len(found)}; the layer "
                    "fails and keeps its initial values")
            for info in (*variables.values(), *found.values()):
                if (info.key in target.by_key) != (info.key in source.by_key):
                    calls[info.key] = KeyCall(False, note)
                    keys.append(info.key)
            unfilled += len(variables)
            continue
        shapes = [info.key for index, info in variables.items()
                  if found[index].shape != info.shape]
        if shapes:
            failed.append(f"Layer '{name}': the shape of the variable and of the saved value "
                          f"differ ({listed(shapes, 3)})")
            keys.extend(shapes)
            unfilled += len(variables)
    for path, variables in stored.items():
        if path not in expected:
            note = (f"group {path or '/'} of the file belongs to no layer of the model: "
                    "load_weights never reads it")
            calls.update({info.key: KeyCall(True, note) for info in variables.values()})
    ignored = sum(1 for call in calls.values() if call.accepted)
    call = f"model.load_weights({source.path!r}{', skip_mismatch=True' if skip_mismatch else ''})"
    if not failed:
        reason = "fills every variable of the model, pairing groups by saving path"
        if ignored:
            reason += f"; {count_phrase(ignored, 'stored variable')} in groups the model lacks "
            reason += "are never read"
    elif skip_mismatch:
        reason = (f"warns that {count_phrase(len(failed), 'object')} could not be loaded and "
                  f"leaves {count_phrase(unfilled, 'variable')} at their initial values: "
                  f"{failed[0]}")
    else:
        reason = (f"ValueError: A total of {len(failed)} objects could not be loaded: "
                  f"{'; '.join(failed[:3])}")
    name = "keras.load_weights" + ("-skip_mismatch" if skip_mismatch else "")
    verdict = Verdict(name, call, "keras", not failed, reason, tuple(dict.fromkeys(keys)))
    return Judgement(verdict, calls, decides_keys=True)
