"""A live Keras model in TensorFlow's object-graph key space: which checkpoint key restores
which of its variables.

``tf.train.Checkpoint(model=m).restore(path)`` (and restoring a SavedModel's ``variables/``)
matches by structure, not by variable name: from the root it follows each checkpointed object's
children by local name, asking the live object for its dependency of that name
(``Trackable._lookup_dependency``), and fills a variable where the walk ends on one. Names a
Keras model answers to are not all listed by ``_trackable_children`` (a Sequential restores
``_layers/1/_kernel`` as well as ``_functional/_operations/1/_kernel``), so the checkpoint's own
paths are walked on the live model, as TensorFlow does, instead of comparing two listings.
Variables no checkpoint path reaches are named by their first breadth-first path, which is the
path a checkpoint written from this model would give them.

Keys use the TF readers' escaping (``.`` -> ``..``, ``/`` -> ``.S``; see
:mod:`ckptdiff.readers.tf.objectgraph`). Uses TensorFlow's trackable protocol on the model;
without it (another Keras backend) every mapping is empty.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from ckptdiff.readers.tf.objectgraph import escape_local_name

# Root children of a tf.train.Checkpoint that are never the model.
_NOT_THE_MODEL = frozenset({"optimizer", "save_counter"})
MAX_OBJECTS = 200_000  # a bound on the walk: models have thousands of trackables, not millions


def unescape_local_name(name: str) -> str:
    """The local name TensorFlow escaped into a checkpoint key (inverse of the readers')."""
    out, i = [], 0
    while i < len(name):
        pair = name[i:i + 2]
        if pair == "..":
            out.append(".")
            i += 2
        elif pair == ".S":
            out.append("/")
            i += 2
        else:
            out.append(name[i])
            i += 1
    return "".join(out)


def _children(obj: Any) -> dict[str, Any]:
    children = getattr(obj, "_trackable_children", None)
    if children is None:
        return {}
    try:
        found = children(save_type="checkpoint")
    except Exception:  # a custom trackable's override may fail; it then has no children
        return {}
    return dict(found) if isinstance(found, dict) else {}


def _is_optimizer(name: str, obj: Any) -> bool:
    return name == "optimizer" or {"_iterations", "_variables"} <= set(_children(obj))


def first_paths(model: Any) -> dict[int, str]:
    """id(object) -> its first breadth-first path below ``model``, optimizers entered last
    (the readers name checkpoint objects by the same rule)."""
    paths: dict[int, str] = {id(model): ""}
    queue: deque[Any] = deque([model])
    deferred: deque[Any] = deque()
    for phase_queue in (queue, deferred):
        while phase_queue and len(paths) < MAX_OBJECTS:
            obj = phase_queue.popleft()
            for name, child in _children(obj).items():
                if id(child) in paths:
                    continue
                base = paths[id(obj)]
                paths[id(child)] = f"{base}/{escape_local_name(name)}" if base else (
                    escape_local_name(name))
                (deferred if phase_queue is queue and _is_optimizer(name, child)
                 else phase_queue).append(child)
    return paths


def lookup(root: Any, path: str) -> Any:
    """The object restore binds to checkpoint ``path`` below ``root``, or None."""
    obj = root
    for part in path.split("/") if path else ():
        name = unescape_local_name(part)
        found = None
        dependency = getattr(obj, "_lookup_dependency", None)
        if dependency is not None:
            try:
                found = dependency(name)
            except Exception:  # user trackables may raise on names they do not know
                found = None
        if found is None:
            found = _children(obj).get(name)
        if found is None:
            return None
        obj = found
    return obj


def bound_keys(model: Any, variables: dict[int, str],
               checkpoint_paths: Mapping[str, Iterable[str]], root: str) -> dict[str, str]:
    """Target key -> the checkpoint key restore fills it from. ``checkpoint_paths`` maps each
    checkpoint key to the object paths that reach it (the key itself first); only paths under
    ``root`` count (``"model"`` for ``tf.train.Checkpoint(model=...)``, ``""`` for a
    SavedModel). ``variables`` maps id(variable) -> target key."""
    prefix = f"{root}/" if root else ""
    bound: dict[str, str] = {}
    for key, paths in checkpoint_paths.items():
        for path in paths:
            if not path.startswith(prefix):
                continue
            obj = lookup(model, path[len(prefix):])
            target_key = variables.get(id(obj)) if obj is not None else None
            if target_key is not None:
                bound.setdefault(target_key, key)
                break
    return bound


def model_root(model: Any, variables: dict[int, str],
               checkpoint_paths: Mapping[str, Iterable[str]]) -> str:
    """Where the checkpoint holds the model: the root child (or the root itself) under which
    the most of the model's variables are restored; ``model`` wins a tie."""
    candidates = {"", *(p.split("/", 1)[0] for paths in checkpoint_paths.values()
                        for p in paths if "/" in p)}
    candidates -= _NOT_THE_MODEL

    def score(root: str) -> tuple[int, bool]:
        return len(bound_keys(model, variables, checkpoint_paths, root)), root == "model"

    return max(sorted(candidates), key=score)
