"""Names the tensors of a TF2 object-based checkpoint from its TrackableObjectGraph.

Raw keys are object paths plus an attribute suffix (``model/dense/kernel/.ATTRIBUTES/
VARIABLE_VALUE``), and TensorFlow names each object by its *shortest* path. With Keras 3 that path
often runs through the optimizer (``optimizer/_trainable_variables/0``) although the object is a
model weight. ckptdiff instead names each object by the first path found when the graph is walked
breadth-first *without entering optimizers*, and only then through them; so a model's weights keep
the same key whether or not an optimizer was saved beside them. Local names are escaped as
TensorFlow does (``.`` -> ``..``, ``/`` -> ``.S``), so where TensorFlow's path and ckptdiff's agree
the key is the raw key minus ``/.ATTRIBUTES/VARIABLE_VALUE``.

Optimizers are nodes that own slot variables (TF1 optimizers, Keras 2 ``OptimizerV2``), Keras
(2.11+ and 3) optimizers (children ``_iterations`` and ``_variables``), and the root's child named
``optimizer``. Slots are keyed ``<optimizer path>/<variable key>/<slot name>``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from ckptdiff.errors import CorruptFileError
from ckptdiff.readers.tf.keras_slots import keras_slots
from ckptdiff.readers.tf.proto.trackable_object_graph_pb2 import TrackableObjectGraph

VARIABLE_VALUE = "VARIABLE_VALUE"
BOOKKEEPING_ROOT_CHILDREN = frozenset({"save_counter"})


@dataclass(frozen=True)
class TensorNaming:
    """What the object graph says about one raw checkpoint key."""

    key: str
    variable_name: str | None
    kind: str
    slot_of: str | None = None
    trainable: bool | None = None


def escape_local_name(name: str) -> str:
    """A local name as TensorFlow writes it inside checkpoint keys."""
    return name.replace(".", "..").replace("/", ".S")


def optimizer_nodes(graph: TrackableObjectGraph) -> set[int]:
    """Ids of the nodes that are optimizers (see the module docstring)."""
    found = {i for i, node in enumerate(graph.nodes) if node.slot_variables}
    for i, node in enumerate(graph.nodes):
        names = {child.local_name for child in node.children}
        if {"_iterations", "_variables"} <= names:
            found.add(i)
    if graph.nodes:
        found.update(c.node_id for c in graph.nodes[0].children if c.local_name == "optimizer")
    return found


def object_paths(
    graph: TrackableObjectGraph, optimizers: set[int]
) -> tuple[dict[int, str], set[int]]:
    """Node id -> readable path, and the ids only reachable through an optimizer."""
    paths = {0: ""}
    via_optimizer: set[int] = set()
    deferred: deque[int] = deque()
    for phase in (0, 1):
        queue = deque([0]) if phase == 0 else deferred
        while queue:
            node_id = queue.popleft()
            if phase == 0 and node_id in optimizers and node_id != 0:
                deferred.append(node_id)
                continue
            for child in graph.nodes[node_id].children:
                if child.node_id in paths:
                    continue
                prefix = paths[node_id] + "/" if paths[node_id] else ""
                paths[child.node_id] = prefix + escape_local_name(child.local_name)
                if phase == 1:
                    via_optimizer.add(child.node_id)
                queue.append(child.node_id)
    return paths, via_optimizer


def all_paths(graph: TrackableObjectGraph, optimizers: set[int],
              cap: int = 4) -> dict[int, list[str]]:
    """Node id -> up to ``cap`` paths from the root (the readable one first), not through
    optimizers. Restore follows every path, and a live model may answer to only some of them
    (a Keras Sequential's ``_layers/1`` is also ``_functional/_operations/1``)."""
    primary, via_optimizer = object_paths(graph, optimizers)
    paths = {node_id: [path] for node_id, path in primary.items()
             if node_id not in via_optimizer and node_id not in optimizers}
    for _ in range(cap):  # each round extends the paths found one edge further
        changed = False
        for node_id, node in enumerate(graph.nodes):
            if node_id in optimizers and node_id != 0 or node_id not in paths:
                continue
            for child in node.children:
                known = paths.setdefault(child.node_id, [])
                for base in list(paths[node_id]):
                    path = f"{base}/{escape_local_name(child.local_name)}" if base else (
                        escape_local_name(child.local_name))
                    if len(known) < cap and path not in known:
                        known.append(path)
                        changed = True
        if not changed:
            break
    return paths


def _validate(graph: TrackableObjectGraph, path: str) -> None:
    count = len(graph.nodes)
    for node in graph.nodes:
        ids = [c.node_id for c in node.children]
        for ref in node.slot_variables:
            ids += [ref.original_variable_node_id, ref.slot_variable_node_id]
        if any(not 0 <= i < count for i in ids):
            raise CorruptFileError(f"{path}: the object graph refers to a node it does not have")


def _attribute_key(node_path: str, attribute: str) -> str:
    if attribute == VARIABLE_VALUE:
        return node_path
    return f"{node_path}/{escape_local_name(attribute)}" if node_path else attribute


def _collect_slots(
    graph: TrackableObjectGraph, optimizers: set[int]
) -> tuple[dict[int, tuple[int, int, str]], set[int]]:
    """Slot node id -> (optimizer id, variable id, slot name), and the ids of trained variables."""
    slots: dict[int, tuple[int, int, str]] = {}
    trained: set[int] = set()
    for optimizer_id in sorted(optimizers):
        for ref in graph.nodes[optimizer_id].slot_variables:
            slots.setdefault(ref.slot_variable_node_id,
                             (optimizer_id, ref.original_variable_node_id, ref.slot_name))
            trained.add(ref.original_variable_node_id)
        trainables, found = keras_slots(graph, optimizer_id)
        trained.update(trainables)
        for slot_id, variable_id, name in found:
            slots.setdefault(slot_id, (optimizer_id, variable_id, name))
    return slots, trained


def name_tensors(graph: TrackableObjectGraph, path: str) -> dict[str, TensorNaming]:
    """Raw checkpoint key -> readable key, variable name, kind, slot owner and trainability."""
    _validate(graph, path)
    if not graph.nodes:
        return {}
    optimizers = optimizer_nodes(graph)
    paths, via_optimizer = object_paths(graph, optimizers)
    slots, trained = _collect_slots(graph, optimizers)
    bookkeeping = {c.node_id for c in graph.nodes[0].children
                   if c.local_name in BOOKKEEPING_ROOT_CHILDREN}
    namings: dict[str, TensorNaming] = {}
    used: set[str] = set()
    value_keys: dict[int, str] = {}

    def claim(raw: str, wanted: str, full_name: str, kind: str, slot_of: str | None = None,
              trainable: bool | None = None) -> str:
        # A readable key that is empty or already taken falls back to the (unique) raw key.
        key = wanted if wanted and wanted not in used else raw
        used.add(key)
        namings[raw] = TensorNaming(key, full_name or None, kind, slot_of, trainable)
        return key

    # Plain objects first, so that slots can name the variable they belong to.
    for node_id, node in enumerate(graph.nodes):
        if node_id in slots:
            continue
        for attr in node.attributes:
            stripped = attr.checkpoint_key.removesuffix("/.ATTRIBUTES/" + attr.name)
            wanted = _attribute_key(paths[node_id], attr.name) if node_id in paths else stripped
            is_other = (attr.name != VARIABLE_VALUE or node_id in bookkeeping
                        or (node_id in via_optimizer and node_id not in trained))
            key = claim(attr.checkpoint_key, wanted, attr.full_name,
                        "other" if is_other else "parameter",
                        trainable=True if node_id in trained else None)
            if attr.name == VARIABLE_VALUE:
                value_keys[node_id] = key
    for slot_id, (optimizer_id, variable_id, slot_name) in sorted(slots.items()):
        owner = value_keys.get(variable_id)
        for attr in graph.nodes[slot_id].attributes:
            base = paths.get(optimizer_id, "")
            wanted = "/".join(p for p in (base, owner, escape_local_name(slot_name)) if p)
            if owner is None:
                wanted = attr.checkpoint_key.removesuffix("/.ATTRIBUTES/" + attr.name)
            claim(attr.checkpoint_key, _attribute_key(wanted, attr.name), attr.full_name,
                  "optimizer_slot", slot_of=owner)
    return namings
