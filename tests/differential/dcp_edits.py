"""Structure-aware edits of a torch.distributed.checkpoint directory.

The seed's ``.metadata`` (written by the seed maker, never a mutated one) is unpickled here with
torch's own classes; a structured edit changes one field of that ``Metadata`` (a tensor's size
or dtype, a chunk's offsets or sizes, a storage entry's file, offset or length, the planner's
nesting paths, the version, a key) and pickles it again. A pickle edit changes one opcode of the
protocol-2 pickle of the metadata (tests/differential/pickle_edits.py). A file edit drops,
renames, adds or truncates a storage file, or truncates ``.metadata``.
"""

from __future__ import annotations

import copy
import pickle
import random
from collections.abc import Callable
from typing import Any

from tests.differential import pickle_edits

Files = tuple[tuple[str, bytes], ...]
METADATA = ".metadata"

_DIMS = [0, 1, 2, 3, 4, 6, 7, 2**31 - 1, 2**40, -1]
_DTYPES = ["float32", "float64", "float16", "bfloat16", "int64", "int32", "int8", "uint8",
           "bool", "complex64", "uint16", "uint64", "float8_e4m3fn", "float8_e5m2", "qint8",
           "quint4x2", "bits8", "float4_e2m1fn_x2", "complex32"]
_NAMES = ["__0_0.distcp", "__0_1.distcp", "__1_0.distcp", "sub/__0_0.distcp", "", "..",
          "../__0_0.distcp", "/etc/passwd", "a\\b.distcp", "C:x.distcp", "__0_0.distcp\x00",
          ".metadata", "./__0_0.distcp"]
_VERSIONS = [None, "1.0.0", "2.0.0", "0.9", "", "x"]


def _tensor_keys(meta: Any) -> list[str]:
    from torch.distributed.checkpoint.metadata import TensorStorageMetadata

    return [k for k, v in meta.state_dict_metadata.items()
            if isinstance(v, TensorStorageMetadata)]


def _shape(shape: Any, rng: random.Random) -> Any:
    import torch

    dims = list(shape)
    choice = rng.randrange(3)
    if choice == 0 and dims:
        dims[rng.randrange(len(dims))] = rng.choice(_DIMS)
    elif choice == 1:
        dims.insert(rng.randrange(len(dims) + 1), rng.choice(_DIMS))
    elif dims:
        dims.pop(rng.randrange(len(dims)))
    try:
        return torch.Size(dims)
    except (TypeError, RuntimeError, OverflowError):
        return tuple(dims)


def _size(meta: Any, rng: random.Random) -> str:
    key = rng.choice(_tensor_keys(meta))
    entry = meta.state_dict_metadata[key]
    entry.size = _shape(entry.size, rng)
    return f"size of {key} -> {tuple(entry.size)}"


def _dtype(meta: Any, rng: random.Random) -> str:
    import torch

    key = rng.choice(_tensor_keys(meta))
    name = rng.choice(_DTYPES)
    meta.state_dict_metadata[key].properties.dtype = getattr(torch, name)
    return f"dtype of {key} -> {name}"


def _chunk(meta: Any, rng: random.Random) -> str:
    key = rng.choice(_tensor_keys(meta))
    chunks = meta.state_dict_metadata[key].chunks
    what = rng.choice(["offsets", "sizes", "drop", "duplicate", "split"])
    if what == "drop" or not chunks:
        chunks.clear()
    elif what == "duplicate":
        chunks.append(copy.deepcopy(chunks[0]))
    elif what == "split" and len(chunks[0].sizes) and chunks[0].sizes[0] > 1:
        # two halves along dim 0, the second one stored nowhere (a missing rank's chunk)
        first = chunks[0]
        half = first.sizes[0] // 2
        second = copy.deepcopy(first)
        first.sizes = _with(first.sizes, 0, half)
        second.offsets = _with(second.offsets, 0, first.offsets[0] + half)
        second.sizes = _with(second.sizes, 0, second.sizes[0] - half)
        chunks.append(second)
    else:
        chunk = rng.choice(chunks)
        setattr(chunk, what if what in ("offsets", "sizes") else "sizes",
                _shape(getattr(chunk, what if what in ("offsets", "sizes") else "sizes"), rng))
    return f"chunks of {key}: {what}"


def _with(shape: Any, index: int, value: int) -> Any:
    import torch

    dims = list(shape)
    dims[index] = value
    return torch.Size(dims)


def _storage(meta: Any, rng: random.Random) -> str:
    import dataclasses

    index = rng.choice(list(meta.storage_data))
    info = meta.storage_data[index]
    what = rng.choice(["relative_path", "offset", "length", "drop", "fqn", "index_offset"])
    if what == "drop":
        del meta.storage_data[index]
    elif what == "relative_path":
        info.relative_path = rng.choice(_NAMES)
    elif what in ("offset", "length"):
        value = getattr(info, what)
        setattr(info, what, rng.choice([0, 1, value - 1, value + 1, value * 2, 2**40]))
    else:
        if what == "fqn":
            new = dataclasses.replace(index, fqn=rng.choice([*meta.state_dict_metadata, "x"]))
        else:
            new = dataclasses.replace(index, offset=_shape(index.offset or (), rng))
        del meta.storage_data[index]
        meta.storage_data[new] = info
    return f"storage entry {index.fqn}: {what}"


def _planner(meta: Any, rng: random.Random) -> str:
    keys = list(meta.state_dict_metadata)
    key = rng.choice(keys)
    what = rng.choice(["drop", "path", "none", "collide", "int", "whole"])
    paths = meta.planner_data
    if what == "whole":
        meta.planner_data = rng.choice([None, {}, []])
    elif what == "drop":
        paths.pop(key, None)
    elif what == "none":
        paths[key] = None
    elif what == "collide":
        paths[key] = paths[rng.choice(keys)]
    elif what == "int":
        paths[key] = tuple(int(s) if isinstance(s, str) and s.isdigit() else s
                           for s in (*paths.get(key, ()), "0"))
    else:
        paths[key] = tuple(rng.choice(["model", "optim", "state", "0", 0, "", "w", "a.b"])
                           for _ in range(rng.randrange(1, 4)))
    return f"planner_data of {key}: {what}"


def _key(meta: Any, rng: random.Random) -> str:
    from torch.distributed.checkpoint.metadata import BytesStorageMetadata

    entries = meta.state_dict_metadata
    key = rng.choice(list(entries))
    what = rng.choice(["rename", "drop", "bytes", "version"])
    if what == "version":
        meta.version = rng.choice(_VERSIONS)
    elif what == "bytes":
        entries[key] = BytesStorageMetadata()
    elif what == "drop":
        del entries[key]
    else:
        entries[rng.choice(["", "model.x", "w", key + "."])] = entries.pop(key)
    return f"{what} {key}"


_STRUCTURED: list[Callable[[Any, random.Random], str]] = [
    _size, _dtype, _chunk, _chunk, _storage, _storage, _planner, _key]


def _files(files: dict[str, bytes], rng: random.Random) -> str:
    storage = sorted(n for n in files if n != METADATA)
    name = rng.choice(storage)
    what = rng.choice(["drop", "rename", "extra", "truncate", "truncate_metadata"])
    if what == "drop":
        del files[name]
    elif what == "rename":
        files["__9_9.distcp"] = files.pop(name)
    elif what == "extra":
        files["__0_1.distcp"] = files[name]
    elif what == "truncate":
        files[name] = files[name][:rng.randrange(len(files[name]))]
    else:
        files[METADATA] = files[METADATA][:rng.randrange(len(files[METADATA]))]
    return f"file {name}: {what}"


def mutate(data: Files, protocol: int, rng: random.Random) -> tuple[str, Files]:
    """One edit of the DCP directory ``data`` whose ``.metadata`` was pickled with
    ``protocol``: structured (re-pickled), a pickle opcode edit, or a file edit."""
    files = dict(data)
    meta = pickle.loads(files[METADATA])  # the seed's own metadata, written by torch
    kind = rng.random()
    if kind < 0.55:
        what = rng.choice(_STRUCTURED)(meta, rng)
        files[METADATA] = pickle.dumps(meta, protocol=protocol)
    elif kind < 0.85:
        what, files[METADATA] = pickle_edits.edit(pickle.dumps(meta, protocol=2), rng)
    else:
        what = _files(files, rng)
    return what, tuple(sorted(files.items()))
