"""The state dict DCP's own load rebuilds from ``.metadata``, and the reads it plans.

``torch.distributed.checkpoint`` loads a checkpoint without a model (``dcp_to_torch_save``,
``_load_state_dict_from_keys``) with ``_EmptyStateDictLoadPlanner``: every entry of
``state_dict_metadata`` is placed in a fresh dict by ``set_element`` along its ``planner_data``
path (or at its own key when it has none), the result is flattened again by
``traverse_state_dict`` (with the torch 2.3 traversal as a fallback when that loses keys), and
each flattened key must be an entry of the metadata, of the same kind and size; then every saved
chunk that overlaps the tensor is read through its ``storage_data`` entry. This module repeats
those steps on the records, so ckptdiff reports the tensors at the keys that load gives them
and refuses what it refuses. Paths DCP never writes (a step through a saved value, an int step
into a dict, a negative index) are refused: torch would index a tensor with them, or fail.
"""

from __future__ import annotations

from typing import Any

from ckptdiff.errors import CorruptFileError
from ckptdiff.readers.safety import MAX_CONTAINER_DEPTH
from ckptdiff.readers.torch.dcp_layout import NON_TENSOR, DcpTensor, Read


class _Leaf:
    """An entry placed in the rebuilt state dict (compared by identity, as torch's objects)."""

    __slots__ = ("key", "tensor")

    def __init__(self, key: str, tensor: DcpTensor | None) -> None:
        self.key, self.tensor = key, tensor


class _Odd(Exception):
    """A path the rebuild cannot follow as DCP writes paths."""


def _extend(items: list[Any], index: int) -> None:
    while len(items) <= index:
        items.append(None)


def _set_element(root: dict[Any, Any], path: tuple[Any, ...], value: _Leaf) -> None:
    """``torch.distributed.checkpoint._traverse.set_element`` on plain dicts and lists."""
    node: Any = root
    for previous, step in zip(path, path[1:], strict=False):
        default: Any = {} if type(step) is str else []
        if isinstance(node, dict) and type(previous) is str:
            node = node.setdefault(previous, default)
        elif isinstance(node, list) and type(previous) is int and previous >= 0:
            _extend(node, previous)
            if node[previous] is None:
                node[previous] = default
            node = node[previous]
        else:
            raise _Odd
    last = path[-1]
    if isinstance(node, list) and type(last) is int and last >= 0:
        _extend(node, last)
    elif not (isinstance(node, dict) and type(last) is str):
        raise _Odd
    node[last] = value


def _terminal(value: object, old: bool) -> bool:
    """``traverse_state_dict``'s ``_is_terminal`` (``old``: its torch 2.3 version, for which a
    dict without tensors is a leaf too)."""
    if isinstance(value, dict):
        if not old:
            return False
        values: Any = value.values()
    elif isinstance(value, list):
        values = value
    else:
        return True
    return not any(isinstance(e, _Leaf) and e.tensor is not None
                   or isinstance(e, (dict, list)) and not _terminal(e, old) for e in values)


def _flatten(tree: dict[Any, Any], old: bool, display: str) -> dict[str, tuple[Any, ...]]:
    """``flatten_state_dict``: joined key -> (path, value); a repeated key is refused."""
    flat: dict[str, tuple[Any, ...]] = {}

    def visit(path: tuple[Any, ...], value: object) -> None:
        if (old or not isinstance(value, dict)) and _terminal(value, old):
            key = ".".join(map(str, path))
            if key in flat:
                raise CorruptFileError(f"{display}: DCP's load rebuilds the key {key[:80]!r} "
                                       "twice (planner_data paths collide)")
            flat[key] = (path, value)
        elif isinstance(value, dict):
            for k, v in value.items():
                visit((*path, str(k)), v)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                visit((*path, i), v)

    for key, value in tree.items():
        visit((str(key),), value)
    return flat


def _rebuild(entries: dict[str, object], tensors: dict[str, DcpTensor], paths: object,
             display: str) -> dict[Any, Any]:
    tree: dict[Any, Any] = {}
    for key in entries:
        leaf = _Leaf(key, tensors.get(key))
        if paths is None or not isinstance(paths, dict) and not paths:
            tree[key] = leaf
            continue
        if not isinstance(paths, dict):
            raise CorruptFileError(f"{display}: planner_data is not a dict of nesting paths")
        path = paths.get(key)
        if key not in paths:
            tree[key] = leaf
        elif not isinstance(path, (tuple, list)) or not 0 < len(path) <= MAX_CONTAINER_DEPTH:
            raise CorruptFileError(f"{display}: planner_data gives {key[:80]!r} no nesting path "
                                   "DCP's load can follow")
        else:
            try:
                _set_element(tree, tuple(path), leaf)
            except _Odd:
                raise CorruptFileError(
                    f"{display}: planner_data path of {key[:80]!r} does not fit the nesting "
                    "DCP's load rebuilds (it runs through another entry, or indexes a dict with "
                    "a number)") from None
    return tree


def plan(entries: dict[str, object], tensors: dict[str, DcpTensor], paths: object,
         display: str) -> tuple[object, list[Read]]:
    """The state dict DCP's load returns (tensors as :class:`DcpTensor`, other values as
    ``NON_TENSOR``), and the ``storage_data`` entries it reads, in order, each with the chunk
    (sizes, dtype) it is read into (None for a non-tensor value)."""
    tree = _rebuild(entries, tensors, paths, display)
    flat = _flatten(tree, False, display)
    missing = set(entries) - set(flat)
    if missing:
        old = _flatten(tree, True, display)
        if missing & set(old):
            flat = old
    values: dict[int, object] = {}
    reads: list[Read] = []
    for key, (_, value) in flat.items():
        if key not in entries:
            raise CorruptFileError(f"{display}: DCP's load rebuilds the key {key[:80]!r}, which "
                                   ".metadata has no entry for (planner_data)")
        saved = tensors.get(key)
        if saved is None:  # a non-tensor entry: whatever is there is replaced by its value
            reads.append(((key, None), None))
            values[id(value)] = NON_TENSOR
            continue
        placed = value.tensor if isinstance(value, _Leaf) else None
        if placed is None:
            raise CorruptFileError(f"{display}: {key[:80]!r} is a tensor in .metadata, but "
                                   "planner_data puts a non-tensor value there")
        if placed.shape != saved.shape:
            raise CorruptFileError(f"{display}: planner_data puts a tensor of size "
                                   f"{list(placed.shape)} at {key[:80]!r}, saved as "
                                   f"{list(saved.shape)}")
        values[id(value)] = DcpTensor(saved.shape, placed.dtype, saved.chunks)
        reads += [((key, c.offsets), (c.sizes, placed.dtype)) for c in saved.chunks
                  if all(size > 0 for size in c.sizes)]  # the chunks that overlap the tensor
    _check_aliases(tree, display)
    return _values(tree, values), reads


def _check_aliases(node: object, display: str) -> None:
    """A key spelling a path through a sibling (``optim.state.0.w`` beside ``optim``) is two
    things: DCP's load into a model matches state dict entries by dotted key (so it loads
    there), ``dcp_to_torch_save`` keeps it apart. Refused as ambiguous."""
    if isinstance(node, list):
        for item in node:
            _check_aliases(item, display)
    if not isinstance(node, dict):
        return
    for key, item in node.items():
        parts = str(key).split(".")
        for end in range(1, len(parts)):
            if ".".join(parts[:end]) in node:
                raise CorruptFileError(f"{display}: the key {str(key)[:80]!r} also names a path "
                                       f"inside {'.'.join(parts[:end])[:80]!r}: DCP's load into "
                                       "a model and dcp_to_torch_save read it differently")
        _check_aliases(item, display)


def _values(node: object, values: dict[int, object]) -> object:
    """The rebuilt tree with each entry replaced by what the load puts there."""
    if isinstance(node, dict):
        return {k: _values(v, values) for k, v in node.items()}
    if isinstance(node, list):
        return [_values(v, values) for v in node]
    found = values.get(id(node))
    return found if found is not None else NON_TENSOR if isinstance(node, _Leaf) else node
