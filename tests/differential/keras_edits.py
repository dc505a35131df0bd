"""Mutations of Keras HDF5 files, made through h5py on an in-memory copy (structure-aware: links,
datasets, dtypes, dataspaces, attributes, filters) and a few raw byte edits of the HDF5 metadata
(superblock, object headers, B-trees, heaps).

Every choice comes from the ``rng``; h5py writes no timestamps, so an edit is reproducible.
"""

from __future__ import annotations

import io
import random
from collections.abc import Callable
from typing import Any

_NAMES = ["0", "1", "2", "3", "4", "vars", "layers", "cell", "x", "d1", "dense", "dense_1",
          "optimizer", "model_weights", "top_level_model_weights", "00", " 0", "-1", "."]
_ATTR_NAMES = ["layer_names", "weight_names", "name", "keras_version", "backend", "dtype",
               "model_config", "layer_names0", "weight_names0"]
_SIGNATURES = (b"\x89HDF", b"OHDR", b"TREE", b"HEAP", b"SNOD", b"GCOL", b"FRHP", b"BTHD")


def _objects(root: Any) -> tuple[list[str], list[str]]:
    """Paths of every group (root included) and dataset reached by hard links."""
    import h5py

    groups: list[str] = ["/"]
    datasets: list[str] = []

    def visit(name: str, obj: Any) -> None:
        (groups if isinstance(obj, h5py.Group) else datasets).append("/" + name)

    root.visititems(visit)
    return groups, datasets


def _parent_name(path: str) -> tuple[str, str]:
    parent, _, name = path.rpartition("/")
    return parent or "/", name


def _dtype(rng: random.Random) -> tuple[str, Any]:
    import h5py
    import numpy as np

    choices: list[tuple[str, Any]] = [
        ("vlen str", h5py.string_dtype()), ("vlen bytes", h5py.string_dtype("ascii")),
        ("vlen float", h5py.vlen_dtype("f4")), ("reference", h5py.ref_dtype),
        ("region reference", h5py.regionref_dtype),
        ("compound", np.dtype([("a", "f4"), ("b", "i4")])),
        ("enum", h5py.enum_dtype({"A": 0, "B": 1}, basetype="i1")), ("bool", np.dtype(bool)),
        ("float16", np.dtype("f2")), ("float64", np.dtype("f8")), ("int64", np.dtype("i8")),
        ("uint8", np.dtype("u1")), ("complex64", np.dtype("c8")), ("S8", np.dtype("S8")),
        ("opaque V2", h5py.opaque_dtype(np.dtype("V2"))),
        ("opaque V4", h5py.opaque_dtype(np.dtype("V4"))), ("array f4x3", np.dtype(("f4", (3,)))),
        ("big-endian f4", np.dtype(">f4")), ("float32", np.dtype("f4"))]
    return rng.choice(choices)


def _new_dataset(group: Any, name: str, rng: random.Random, shape: Any = None,
                 dtype: Any = None, **options: Any) -> str:
    import h5py
    import numpy as np

    label = ""
    if dtype is None:
        label, dtype = _dtype(rng)
    if shape is None:
        shape = rng.choice([(), (0,), (2,), (3, 2), (1, 0, 2), (2, 1)])
    if isinstance(shape, h5py.Empty):
        group.create_dataset(name, data=h5py.Empty(dtype))
        return f"{label} null dataspace"
    chunked = options.pop("chunked", False)
    if chunked and shape and all(shape):
        options.setdefault("chunks", True)
    group.create_dataset(name, shape=shape, dtype=dtype, **options)
    if np.dtype(dtype).kind in "fiub" and not chunked and all(shape):
        group[name][...] = 1
    return f"{label} {shape}"


def _replace_dataset(root: Any, path: str, rng: random.Random) -> str:
    """Re-create the dataset at ``path`` with a new dtype, shape or storage."""
    import h5py

    old = root[path]
    shape = old.shape
    attrs = dict(old.attrs)
    parent, name = _parent_name(path)
    del root[path]
    kind = rng.randrange(4)
    if kind == 0:
        what = "dtype " + _new_dataset(root[parent], name, rng, shape=shape)
    elif kind == 1:
        new_shape = rng.choice([(), (0,), h5py.Empty("f4"), (*shape, 1), shape[:-1],
                                (1 << 20, 1 << 13), (1 << 40,), tuple(d + 1 for d in shape)])
        big = not isinstance(new_shape, h5py.Empty) and len(new_shape) and max(new_shape) > 4096
        what = "shape " + _new_dataset(root[parent], name, rng, shape=new_shape,
                                       dtype=old.dtype, chunked=bool(big),
                                       fillvalue=0 if big else None)
    elif kind == 2:
        filters: list[tuple[str, dict[str, Any]]] = [
            ("gzip", {"compression": "gzip"}), ("lzf", {"compression": "lzf"}),
            ("shuffle", {"shuffle": True}), ("fletcher32", {"fletcher32": True}),
            ("scaleoffset", {"scaleoffset": 2}), ("chunks", {}),
            ("unavailable filter 32001", {"compression": 32001, "allow_unknown_filter": True}),
            ("unavailable filter 307", {"compression": 307, "allow_unknown_filter": True})]
        label, options = rng.choice(filters)
        what = f"filter {label} " + _new_dataset(root[parent], name, rng, shape=shape or (1,),
                                                 dtype=old.dtype, chunked=True, **options)
    else:
        what = "track_times " + _new_dataset(root[parent], name, rng, shape=shape,
                                             dtype=old.dtype, track_times=True)
    for key, value in attrs.items():
        root[path].attrs[key] = value
    return f"replace {path}: {what}"


def _attribute_value(rng: random.Random, old: Any, others: list[str]) -> tuple[str, Any]:
    import h5py
    import numpy as np

    items = [x.decode() if isinstance(x, bytes) else str(x) for x in np.atleast_1d(old)] \
        if old is not None else ["d1"]
    choice = rng.randrange(12)
    if choice == 0:
        return "str scalar", items[0] if items else ""
    if choice == 1:
        return "bytes scalar", (items[0] if items else "").encode()
    if choice == 2:
        return "fixed bytes array", np.array([i.encode() for i in items] or [b""])
    if choice == 3:
        return "vlen str array", np.array(items, dtype=h5py.string_dtype())
    if choice == 4:
        return "drop entry", np.array(items[1:] or [""], dtype=h5py.string_dtype())
    if choice == 5:
        extra = rng.choice(others + ["missing", "x/../y", ""])
        return f"add entry {extra!r}", np.array([*items, extra], dtype=h5py.string_dtype())
    if choice == 6:
        return "reversed", np.array(items[::-1], dtype=h5py.string_dtype())
    if choice == 7:
        return "int array", np.arange(len(items) or 1)
    if choice == 8:
        return "int scalar", np.int64(rng.randrange(3))
    if choice == 9:
        return "invalid utf-8", np.array([b"\xff\xfe" + i.encode() for i in items] or [b"\xff"])
    if choice == 10:
        return "duplicate entry", np.array(items + items[:1], dtype=h5py.string_dtype())
    return "bfloat16 marker", rng.choice(["bfloat16", b"bfloat16", np.array(["bfloat16"]),
                                          np.array(["bfloat16", "x"], dtype=h5py.string_dtype())])


def _edit_attribute(root: Any, groups: list[str], datasets: list[str],
                    rng: random.Random) -> str:
    owners = [p for p in groups + datasets if len(root[p].attrs)] or groups
    owner = root[rng.choice(owners)]
    present = list(owner.attrs)
    name = rng.choice(present) if present and rng.random() < 0.8 else rng.choice(_ATTR_NAMES)
    if name in owner.attrs and rng.random() < 0.2:
        del owner.attrs[name]
        return f"delete attribute {owner.name}@{name}"
    if name in present and name.endswith("names") and rng.random() < 0.15:
        value = owner.attrs[name]  # split into Keras' chunked spelling: name0, name1
        del owner.attrs[name]
        half = max(1, len(value) // 2)
        owner.attrs[f"{name}0"], owner.attrs[f"{name}1"] = value[:half], value[half:]
        return f"chunk attribute {owner.name}@{name}"
    label, value = _attribute_value(rng, owner.attrs.get(name), [p.rsplit("/")[-1]
                                                                   for p in groups])
    owner.attrs[name] = value
    return f"attribute {owner.name}@{name}: {label}"


def _link_edit(root: Any, groups: list[str], datasets: list[str], rng: random.Random) -> str:
    import h5py

    target = rng.choice(groups + datasets)
    where = root[rng.choice(groups)]
    name = rng.choice(_NAMES[:-1])
    if name in where:
        del where[name]
    kind = rng.randrange(4)
    if kind <= 1:  # a hard link: one object under two names (a group may contain itself)
        where[name] = root[target]
        return f"hard link {where.name}/{name} -> {target}"
    if kind == 2:
        dangling = rng.random() < 0.3
        where[name] = h5py.SoftLink("/missing" if dangling else target)
        return f"soft link {where.name}/{name} -> {'/missing' if dangling else target}"
    where[name] = h5py.ExternalLink("other.h5", target)
    return f"external link {where.name}/{name} -> other.h5:{target}"


def _structure(root: Any, rng: random.Random) -> str:
    groups, datasets = _objects(root)
    choice = rng.randrange(9)
    if choice == 0 and len(groups) + len(datasets) > 1:
        path = rng.choice(groups[1:] + datasets)
        parent, _ = _parent_name(path)
        new = f"{parent.rstrip('/')}/{rng.choice(_NAMES[:-1])}"
        if new in root and new != path:
            del root[new]
        if new != path and not new.startswith(path + "/"):
            root.move(path, new)
            return f"rename {path} -> {new}"
    if choice == 1 and len(groups) + len(datasets) > 1:
        path = rng.choice(groups[1:] + datasets)
        del root[path]
        return f"delete {path}"
    if choice == 2:
        group = root[rng.choice(groups)]
        name = rng.choice(_NAMES[:-1])
        if name in group:
            del group[name]
        if rng.random() < 0.5:
            return f"add dataset {group.name}/{name} " + _new_dataset(group, name, rng)
        created = group.create_group(name)
        if rng.random() < 0.5:
            created.create_group("vars").attrs["name"] = name
        return f"add group {group.name}/{name}"
    if choice in (3, 4):
        return _link_edit(root, groups, datasets, rng)
    if choice in (5, 6) and datasets:
        return _replace_dataset(root, rng.choice(datasets), rng)
    return _edit_attribute(root, groups, datasets, rng)


def _h5py_edit(data: bytes, edit: Callable[[Any], str]) -> tuple[str, bytes]:
    import h5py

    buffer = io.BytesIO(data)
    with h5py.File(buffer, "r+") as root:
        what = edit(root)
    return what, buffer.getvalue()


def _byte_edit(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    """Flip bytes in HDF5 metadata: the superblock or an object header, B-tree or heap."""
    starts = [0] + [i for sig in _SIGNATURES for i in _find_all(data, sig)]
    start = rng.choice(starts)
    out = bytearray(data)
    if rng.random() < 0.1:
        cut = rng.randrange(start, len(data))
        return f"truncate at {cut}", bytes(out[:cut])
    for _ in range(rng.randint(1, 3)):
        at = min(len(out) - 1, start + rng.randrange(96))
        value = rng.choice([0, 0xFF, 1, out[at] ^ (1 << rng.randrange(8)), rng.randrange(256)])
        out[at] = value
    return f"bytes near {start}", bytes(out)


def _find_all(data: bytes, needle: bytes) -> list[int]:
    found, at = [], data.find(needle)
    while at >= 0:
        found.append(at)
        at = data.find(needle, at + 1)
    return found


def mutate(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    """One or two edits of the Keras HDF5 file ``data``."""
    if rng.random() < 0.12:
        return _byte_edit(data, rng)
    steps = 2 if rng.random() < 0.25 else 1
    whats = []
    for _ in range(steps):
        try:
            what, data = _h5py_edit(data, lambda root: _structure(root, rng))
        except (ValueError, KeyError, TypeError, OSError, RuntimeError) as exc:
            what = f"(edit refused by h5py: {type(exc).__name__})"  # the file stays as it was
        whats.append(what)
    return "; ".join(whats), data
