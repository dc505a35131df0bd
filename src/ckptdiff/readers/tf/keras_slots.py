"""Finds the slot variables of Keras (2.11+ and 3) optimizers in a TF2 object graph.

Keras optimizers do not use TensorFlow's slot-variable records. They track
``_trainable_variables`` (a list node whose children ``0..n-1`` are the trained variables) and,
per slot kind, another list of the same length (``_momentums``, ``_velocities``, …) whose item
``i`` belongs to trainable variable ``i``. A slot's own name ends with the variable's path
(``/`` -> ``_``) and the slot name: ``adam/sequential_dense_kernel_momentum``.
"""

from __future__ import annotations

from ckptdiff.readers.tf.proto.trackable_object_graph_pb2 import TrackableObjectGraph

# Children of a Keras optimizer that are lists but not per-variable slot lists.
_NOT_SLOT_LISTS = frozenset({"_variables", "_trainable_variables", "_trainable_variables_indices"})


def _list_items(graph: TrackableObjectGraph, node_id: int) -> list[int] | None:
    """The node ids of a list node's items in index order, or None if it is not a list."""
    items: dict[int, int] = {}
    for child in graph.nodes[node_id].children:
        if not child.local_name.isdigit():
            return None
        items[int(child.local_name)] = child.node_id
    if sorted(items) != list(range(len(items))):
        return None
    return [items[i] for i in range(len(items))]


def _value_name(graph: TrackableObjectGraph, node_id: int) -> str | None:
    """The ``full_name`` of a node's variable value, or None when it holds no variable."""
    for attribute in graph.nodes[node_id].attributes:
        if attribute.name == "VARIABLE_VALUE":
            return str(attribute.full_name)
    return None


def _slot_name(variable_name: str | None, slot_name: str | None, list_name: str) -> str:
    if variable_name and slot_name:
        stem = variable_name.replace("/", "_") + "_"
        last = slot_name.rsplit("/", 1)[-1]
        if last.startswith(stem) and len(last) > len(stem):
            return last[len(stem):]
    return list_name.lstrip("_") or list_name


def keras_slots(
    graph: TrackableObjectGraph, optimizer_id: int
) -> tuple[list[int], list[tuple[int, int, str]]]:
    """Trained variable ids, and (slot id, variable id, slot name) for each slot found."""
    children = {c.local_name: c.node_id for c in graph.nodes[optimizer_id].children}
    if "_trainable_variables" not in children:
        return [], []
    trainables = _list_items(graph, children["_trainable_variables"])
    if not trainables:
        return [], []
    slots: list[tuple[int, int, str]] = []
    for list_name, list_id in children.items():
        items = None if list_name in _NOT_SLOT_LISTS else _list_items(graph, list_id)
        if items is None or len(items) != len(trainables):
            continue
        names = [_value_name(graph, i) for i in items]
        if any(name is None for name in names):
            continue
        for variable_id, slot_id, slot_full_name in zip(trainables, items, names, strict=True):
            name = _slot_name(_value_name(graph, variable_id), slot_full_name, list_name)
            slots.append((slot_id, variable_id, name))
    return trainables, slots
