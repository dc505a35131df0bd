"""Turns a bundle's entries (and, for TF2, the object graph's naming) into ``TensorInfo``s.

TF1 (name-based) checkpoints keep their keys as written. Their optimizer slots are recognised by
TF1's naming: ``<variable>/<Optimizer>`` or ``<variable>/<Optimizer>_<n>`` beside ``<variable>``
itself (``net/w/Adam``, ``net/w/Adam_1``, ``emb/Momentum``). Integer scalars named like step
counters, and Adam's ``beta1_power``/``beta2_power``, are bookkeeping (kind ``other``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ckptdiff.manifest import TensorInfo
from ckptdiff.readers.tf.bundle import Bundle, BundleEntry
from ckptdiff.readers.tf.objectgraph import TensorNaming

OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
ATTRIBUTES = "/.ATTRIBUTES/"
VALUE_SUFFIX = ATTRIBUTES + "VARIABLE_VALUE"
_TF1_SLOT = re.compile(
    r"^(?:Adam|AdamW|LazyAdam|Momentum|RMSProp|Adagrad|AdagradDA|Adadelta|Ftrl|Nadam|Adamax|"
    r"ProximalAdagrad|ProximalGradientDescent|LARS|LAMB)(?:_\d+)?$")
_STEP_NAMES = frozenset({"global_step", "step", "save_counter", "epoch", "iteration", "iterations",
                         "iter", "_iterations"})
_TF1_BOOKKEEPING = frozenset({"beta1_power", "beta2_power", "learning_rate"})
_INTEGER_DTYPES = frozenset({"int64", "int32", "uint64", "uint32"})


def is_step_counter(key: str, entry: BundleEntry) -> bool:
    """An integer scalar whose last name part is a step/epoch counter name."""
    return (entry.shape == () and entry.dtype in _INTEGER_DTYPES
            and key.rsplit("/", 1)[-1] in _STEP_NAMES)


def tf1_naming(key: str, entry: BundleEntry, keys: Mapping[str, BundleEntry]) -> TensorNaming:
    """Kind and slot owner of a name-based key (the key itself is kept)."""
    owner, _, last = key.rpartition("/")
    if owner in keys and _TF1_SLOT.match(last):
        return TensorNaming(key, None, "optimizer_slot", slot_of=owner)
    if is_step_counter(key, entry) or last in _TF1_BOOKKEEPING and entry.shape == ():
        return TensorNaming(key, None, "other")
    return TensorNaming(key, None, "parameter")


def tf1_namings(entries: Mapping[str, BundleEntry]) -> dict[str, TensorNaming]:
    """Naming of every key of a TF1 bundle; variables that have optimizer slots are trainable."""
    namings = {key: tf1_naming(key, entry, entries) for key, entry in entries.items()}
    owners = {n.slot_of for n in namings.values() if n.slot_of is not None}
    return {key: TensorNaming(n.key, None, n.kind, n.slot_of, True) if key in owners else n
            for key, n in namings.items()}


def tf2_naming(raw: str, namings: Mapping[str, TensorNaming]) -> TensorNaming:
    """The naming of ``raw``, also for tensors a saveable writes under a suffixed key.

    A non-variable attribute may save several tensors under its checkpoint key plus a suffix
    (a lookup table's ``table-keys``/``table-values``, an iterator's ``ITERATOR_STATE``): they
    take the attribute's readable key plus the same suffix. Keys the graph does not cover at all
    keep the raw key minus the attribute suffix.
    """
    if raw in namings:
        return namings[raw]
    marker = raw.find(ATTRIBUTES)
    for end in range(len(raw) - 1, marker + len(ATTRIBUTES) if marker >= 0 else len(raw), -1):
        owner = namings.get(raw[:end])
        if owner is not None:
            return TensorNaming(owner.key + raw[end:], None, owner.kind, owner.slot_of,
                                owner.trainable)
    return TensorNaming(raw.removesuffix(VALUE_SUFFIX), None, "parameter")


def tensor_infos(
    bundle: Bundle,
    shard_names: Mapping[int, str],
    namings: Mapping[str, TensorNaming] | None,
    storage_dir: str = "",
) -> list[TensorInfo]:
    """One ``TensorInfo`` per stored tensor, sorted by key.

    ``namings`` is the object graph's naming of a TF2 checkpoint (None for TF1); a raw key it
    does not name keeps its key minus the attribute suffix. ``storage_dir`` prefixes shard names
    (``variables/`` inside a SavedModel).
    """
    infos: list[TensorInfo] = []
    used: set[str] = set()
    tf2 = namings is not None
    if namings is None:
        namings = tf1_namings(bundle.entries)
    for raw, entry in bundle.entries.items():
        if tf2 and raw == OBJECT_GRAPH_KEY:
            continue
        naming = tf2_naming(raw, namings) if tf2 else namings[raw]
        key = naming.key if naming.key not in used else raw
        used.add(key)
        kind = naming.kind
        if kind == "parameter" and is_step_counter(key, entry):
            kind = "other"
        first = entry.slices[0] if entry.slices else entry
        infos.append(TensorInfo(
            key=key, shape=entry.shape, dtype=entry.dtype, device=None, nbytes=entry.nbytes,
            storage=storage_dir + shard_names[first.shard_id], aliases=() if key == raw else (raw,),
            kind=kind, trainable=naming.trainable, slot_of=naming.slot_of,
            variable_name=naming.variable_name if naming.variable_name != key else None))
    infos.sort(key=lambda info: info.key)
    return infos
