"""``model.load_weights(legacy.h5)`` (by order, or ``by_name=True``), as judges.

Both sides are keyed by legacy slot (``targets.keras.keyspace``: ``layer#3/weight#1`` by order,
``dense/weight#1`` by name). Keras 3.15's ``legacy_h5_format``:

- by order (``load_weights_from_hdf5_group``): the file's layers with weights and
  ``model.layers`` with weights must be as many, or it raises before loading anything ("Layer
  count mismatch"); then layer by layer a different number of weights raises (even with
  ``skip_mismatch=True``), a different shape raises, or with ``skip_mismatch=True`` is skipped
  with a warning. The model's own variables load from ``top_level_model_weights`` only when the
  file has that group (their count must match).
- by name (``..._by_name``): each file layer loads into the model layers of its name; model
  layers the file lacks are skipped silently, file layers the model lacks are ignored; a
  different weight count or shape raises, or is skipped with ``skip_mismatch=True``.

A raise or a skip leaves variables at their initial values: failing.
"""

from __future__ import annotations

from ckptdiff.loaders.verdict import Judgement, KeyCall, Verdict
from ckptdiff.manifest import Manifest, TensorInfo
from ckptdiff.targets.keras.keyspace import LEGACY_NAME, LEGACY_ORDER, TOP_LEVEL

BY_NAME_LOADER = "keras.load_weights-by_name"  # and its -skip_mismatch form
_WEIGHT_KINDS = ("parameter", "buffer")
Groups = dict[str, dict[int, TensorInfo]]  # layer (position or name) -> {weight: tensor}


def applies_legacy(source: Manifest, target: Manifest) -> bool:
    """A legacy ``.h5`` against a live model keyed by legacy slot."""
    space = target.metadata.get("key_space")
    return space in (LEGACY_ORDER, LEGACY_NAME) and source.metadata.get("key_space") == space


def _groups(manifest: Manifest, by_name: bool) -> tuple[Groups, list[TensorInfo]]:
    """The manifest's weights grouped by layer (by name or position), and those in no slot."""
    own_space = manifest.metadata.get("key_space") == (LEGACY_NAME if by_name else LEGACY_ORDER)
    slots = manifest.metadata.get("legacy_slots") or {}
    groups: Groups = {}
    loose: list[TensorInfo] = []
    for info in manifest.tensors:
        if info.kind not in _WEIGHT_KINDS:
            continue
        layer, sep, weight = info.key.rpartition("/weight#")
        if not own_space:  # the slot says how the other rule pairs this key
            slot = slots.get(info.key)
            layer, sep, weight = ("", "", "") if slot is None else (
                TOP_LEVEL if slot[1] < 0 else str(slot[0] if by_name else f"layer#{slot[1]}"),
                "/weight#", str(slot[2]))
        if not sep or not weight.isdigit():
            loose.append(info)
            continue
        groups.setdefault(layer, {})[int(weight)] = info
    return groups, loose


class _Replay:
    """One run of the legacy loader: failures in Keras' words, and the keys behind them."""

    def __init__(self, source: Manifest, target: Manifest, by_name: bool,
                 skip_mismatch: bool) -> None:
        self.source, self.target = source, target
        self.by_name, self.skip = by_name, skip_mismatch
        self.raised: str | None = None
        self.skipped: list[str] = []
        self.keys: list[str] = []
        self.calls: dict[str, KeyCall] = {}

    def fail(self, message: str, keys: list[str], note: str, raises: bool) -> None:
        """Record a raise (the first one ends the load) or a skip; ``keys`` on one side only
        are the missing and unexpected findings behind it, ``note`` says why they fail."""
        if raises and self.raised is None:
            self.raised = message
        elif not raises:
            self.skipped.append(message)
        for key in keys:
            if (key in self.source.by_key) != (key in self.target.by_key):
                self.keys.append(key)
                self.calls[key] = KeyCall(False, note)

    def shape(self, message: str, key: str) -> None:
        """A weight whose shape differs: raised, or skipped with ``skip_mismatch=True``."""
        self.fail(message, [], "", raises=not self.skip)
        self.keys.append(key)

    def layer(self, label: str, stored: dict[int, TensorInfo],
              expected: dict[int, TensorInfo]) -> None:
        """Load one paired layer (or the model's own variables)."""
        if len(stored) != len(expected) or set(stored) != set(expected):
            keys = [i.key for i in (*expected.values(), *stored.values())]
            self.fail(f"Weight count mismatch for {label}: the layer expects {len(expected)} "
                      f"weight(s), the file has {len(stored)}", keys,
                      f"{label} expects {len(expected)} weight(s), the file has {len(stored)}: "
                      "load_weights raises", raises=not (self.skip and self.by_name))
            return
        for weight, info in expected.items():
            if stored[weight].shape != info.shape:
                self.shape(f"Shape mismatch in {label} for weight #{weight}: expects "
                           f"{list(info.shape)}, the file has {list(stored[weight].shape)}",
                           info.key)


def judge_legacy(source: Manifest, target: Manifest, by_name: bool,
                 skip_mismatch: bool) -> Judgement:
    """What ``model.load_weights(legacy.h5, by_name=..., skip_mismatch=...)`` does."""
    stored, loose_stored = _groups(source, by_name)
    expected, loose_expected = _groups(target, by_name)
    replay = _Replay(source, target, by_name, skip_mismatch)
    layers_in = [layer for layer in expected if layer != TOP_LEVEL]
    layers_file = [layer for layer in stored if layer != TOP_LEVEL]
    if not by_name and len(layers_in) != len(layers_file):
        keys = [i.key for g in (*expected.values(), *stored.values()) for i in g.values()]
        replay.fail(f"Layer count mismatch when loading weights from file. Model expected "
                    f"{len(layers_in)} layers, found {len(layers_file)} saved layers", keys,
                    f"the model has {len(layers_in)} layers with weights, the file "
                    f"{len(layers_file)}: load_weights raises before loading any", raises=True)
    else:
        for layer in layers_in:
            if layer in stored:
                replay.layer(f"layer {_label(target, expected[layer])}", stored[layer],
                             expected[layer])
            elif by_name:
                replay.fail(f"no layer named {layer!r} in the file: skipped silently",
                            [i.key for i in expected[layer].values()],
                            "by_name=True skips a layer the file does not have: its weights "
                            "keep their initial values", raises=False)
        _top_level(replay, stored.get(TOP_LEVEL), expected.get(TOP_LEVEL, {}))
    for info in loose_expected:  # a variable in no layer the legacy loader visits
        replay.fail(f"{info.key} is in no layer the legacy loader visits", [info.key],
                    "no legacy .h5 slot fills this variable", raises=False)
    ignored = [i for layer, g in stored.items() if layer not in expected and by_name
               for i in g.values()]
    replay.calls.update({i.key: KeyCall(True, "a layer the model does not have: load_weights("
                                        "by_name=True) ignores it") for i in ignored})
    for info in loose_stored:
        replay.calls.setdefault(info.key, KeyCall(False, "a weight in no layer of the file"))
    return Judgement(_verdict(source, replay, by_name), replay.calls, decides_keys=True)


def _top_level(replay: _Replay, stored: dict[int, TensorInfo] | None,
               expected: dict[int, TensorInfo]) -> None:
    if stored is not None:
        replay.layer("the model's top-level weights", stored, expected)
    elif expected:
        replay.fail("the file has no top_level_model_weights group: the model's own variables "
                    "keep their initial values", [i.key for i in expected.values()],
                    "the file has no top_level_model_weights group, so load_weights leaves "
                    "the model's own variables at their initial values", raises=False)


def _label(target: Manifest, weights: dict[int, TensorInfo]) -> str:
    slots = target.metadata.get("legacy_slots") or {}
    slot = slots.get(next(iter(weights.values())).key)
    return f"#{slot[1]} (named {slot[0]})" if slot else next(iter(weights.values())).key


def _verdict(source: Manifest, replay: _Replay, by_name: bool) -> Verdict:
    options = (", by_name=True" if by_name else "") + (
        ", skip_mismatch=True" if replay.skip else "")
    call = f"model.load_weights({source.path!r}{options})"
    name = (BY_NAME_LOADER if by_name else "keras.load_weights") + (
        "-skip_mismatch" if replay.skip else "")
    if replay.raised is not None:
        reason = f"ValueError: {replay.raised}"
    elif replay.skipped:
        reason = (f"leaves variables at their initial values ({len(replay.skipped)} "
                  f"skipped): {replay.skipped[0]}")
    else:
        reason = "fills every variable of the model, " + (
            "pairing layers by name" if by_name else "pairing layers with weights by order")
    loads = replay.raised is None and not replay.skipped
    return Verdict(name, call, "keras", loads, reason, tuple(dict.fromkeys(replay.keys)))
