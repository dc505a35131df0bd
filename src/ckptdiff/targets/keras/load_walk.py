"""Where Keras 3's ``load_weights`` loads each saveable of a live model from, given a file's
groups: the paths a ``.weights.h5``/``.keras`` file pairs the model's variables by.

``saving_lib._load_state`` walks the model as saving did, but a saveable is marked visited only
when it (and every saveable below it) loaded. One that failed is tried again wherever else the
walk reaches it (a subclassed model's layer is reachable by its attribute and as an item of
``model.layers``, ``layers/dense_1``), and a later success clears the earlier failure. So a
layer added to a subclassed model may load from the group another layer was saved under, while
that layer fails. This module replays that walk with Keras' own ``_walk_saveable`` and naming,
deciding each attempt as ``Layer.load_own_variables`` does (the group's variable count and
shapes against what the saveable saves), without assigning anything. Hand-rolled because Keras
offers no dry run; ``saving_lib`` internals are imported inside the function, and when they are
missing the caller keeps the save paths.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ckptdiff.manifest import Manifest

Shapes = Mapping[str, tuple[int, ...]]  # variable index -> shape
MAX_ATTEMPTS = 100_000  # a bound on the replay: Keras walks a model's saveables, not millions


@dataclass
class _Replay:
    saved: Mapping[str, Shapes]  # save path -> what the saveable saves
    groups: Mapping[str, Shapes]  # file group path -> what the file holds there
    lib: Any
    saveable_type: Any
    snake: Any
    visited: set[int] = field(default_factory=set)
    first: dict[int, str] = field(default_factory=dict)  # id -> first path (its save path)
    loaded: dict[int, str] = field(default_factory=dict)  # id -> path of its last success
    attempts: int = 0

    def fits(self, saveable: Any, path: str) -> bool:
        expected = self.saved.get(self.first.setdefault(id(saveable), path), {})
        found = self.groups.get(path, {})
        return set(found) == set(expected) and all(
            found[index] == shape for index, shape in expected.items())

    def load(self, saveable: Any, path: str, failed: set[int]) -> None:
        self.attempts += 1
        if id(saveable) in self.visited or self.attempts > MAX_ATTEMPTS:
            return
        failure = False
        if hasattr(saveable, "load_own_variables"):
            if self.fits(saveable, path):
                self.loaded[id(saveable)] = path
            else:
                failed.add(id(saveable))
                failure = True
        before = len(failed)
        for name, child in self.lib._walk_saveable(saveable):
            child_path = f"{path}/{name}" if path else name
            if isinstance(child, self.saveable_type):
                self.load(child, child_path, failed)
            elif isinstance(child, (list, dict, tuple)):
                self.container(child, child_path, failed, set())
        if not failure:
            if len(failed) - before <= 0:
                self.visited.add(id(saveable))
            failed.discard(id(saveable))

    def container(self, container: Any, path: str, failed: set[int],
                  seen: set[int]) -> None:
        if id(container) in seen:
            return
        seen.add(id(container))
        used: dict[str, int] = {}
        for item in list(container.values()) if isinstance(container, dict) else container:
            if isinstance(item, self.saveable_type):
                name = self.lib._get_unique_name(self.snake(type(item).__name__), used)
                self.load(item, f"{path}/{name}", failed)
            elif isinstance(item, (list, dict, tuple)):
                nested = f"{path}/{self.lib._get_unique_name('container', used)}"
                # A nested container the file has no group for is tried on its own, its
                # failures not counted (Keras' files from before nested containers were saved).
                present = any(g == nested or g.startswith(f"{nested}/") for g in self.groups)
                self.container(item, nested, failed if present else set(), seen)


def load_paths(model: Any, saved: Mapping[str, Shapes],
               groups: Mapping[str, Shapes]) -> dict[str, str] | None:
    """Save path -> the path ``load_weights`` finally loads that saveable from (its save path
    where it loads from none); None without Keras' saving internals."""
    try:
        from keras.src.saving import saving_lib
        from keras.src.saving.keras_saveable import KerasSaveable
        from keras.src.utils import naming
    except ImportError:
        return None
    if not all(hasattr(saving_lib, name) for name in ("_walk_saveable", "_get_unique_name")):
        return None
    replay = _Replay(saved, groups, saving_lib, KerasSaveable, naming.to_snake_case)
    try:
        replay.load(model, "", set())
    except Exception:  # a user attribute may raise while walked; then keep the save paths
        return None
    return {path: replay.loaded.get(key, path) for key, path in replay.first.items()}


def _split(storage: str) -> tuple[str, str]:
    """``layers/dense/vars/0`` -> (``layers/dense``, ``0``); ``vars/0`` -> (``""``, ``0``)."""
    if storage.startswith("vars/"):
        return "", storage[len("vars/"):]
    layer, _, index = storage.rpartition("/vars/")
    return layer, index


def paths_loaded_from(model: Any, recorded: Mapping[tuple[str, ...], tuple[Any, Any]],
                      source: Manifest, saved_paths: Mapping[str, str]) -> dict[str, str]:
    """``saved_paths`` (key -> save path of the variable) with each variable's path replaced
    by the one ``load_weights`` fills it from, given ``source`` (a ``.weights.h5``/``.keras``
    file's manifest); unchanged where the replay is not possible."""
    member = source.metadata.get("weights_member")
    prefix = f"{member}/" if isinstance(member, str) else ""
    groups: dict[str, dict[str, tuple[int, ...]]] = {}
    for info in source.tensors:
        if info.storage:
            layer, index = _split(info.storage.removeprefix(prefix))
            groups.setdefault(layer, {})[index] = info.shape
    saved = {"/".join(path): {index: tuple(int(d) for d in value.shape)
                              for index, value in values}
             for path, (_, values) in recorded.items()}
    moved = load_paths(model, saved, groups)
    if moved is None:
        return dict(saved_paths)
    out = {}
    for key, storage in saved_paths.items():
        layer, index = _split(storage)
        layer = moved.get(layer, layer)
        out[key] = f"{layer}/vars/{index}" if layer else f"vars/{index}"
    return out
