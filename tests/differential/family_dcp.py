"""torch.distributed.checkpoint directories against DCP's own full load.

The loader side is what ``torch.distributed.checkpoint._load_state_dict_from_keys`` does in one
process: ``FileSystemReader.read_metadata`` (a plain ``pickle.load`` of ``.metadata``), the
``_EmptyStateDictLoadPlanner`` rebuilding the nested state dict from ``planner_data`` with
``torch.empty`` tensors, and ``read_data`` reading every chunk with ``torch.load`` and copying it
in. Two steps of that would run code from the file, which the harness must never do:

- ``pickle.load`` of ``.metadata`` resolves any global. Here it resolves only the globals
  torch's weights-only unpickler allows plus DCP's own metadata classes; any other global makes
  the reading "would run code" (accepted, with a tensor named for the global, so ckptdiff
  accepting such a file is a differential and refusing it is ``stricter``).
- non-tensor values are read with ``torch.load(weights_only=False)``; here with
  ``weights_only=True`` (``io.BytesIO`` allowed). The seeds' values load either way; storage
  bytes are never mutated except by truncation.

A load that fails only for lack of memory (a mutated size of 2**40 elements: ``torch.empty``
allocates the whole tensor) reads as ``needs_device``: the machine's limit, not the file's.
Keys: the loaded nested dict flattened with ``.`` (as DCP flattens it on save, and as ckptdiff
keys DCP entries).
"""

from __future__ import annotations

import io
import logging
import pickle
import random
import tempfile
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from tests.differential import dcp_edits
from tests.differential.families import Data, Family, Seed
from tests.differential.family_torch import _flatten
from tests.differential.sides import Reading

_NO_MEMORY = ("can't allocate memory", "not enough memory", "MemoryError")


class _RunsCode(Exception):
    """``.metadata`` names a global whose resolution torch's ``pickle.load`` would run."""


def _safe_globals() -> dict[tuple[str, str], Any]:
    import pathlib

    import torch
    from torch._weights_only_unpickler import _get_allowed_globals
    from torch.distributed.checkpoint import filesystem, metadata

    found: dict[tuple[str, str], Any] = {}
    for name, value in _get_allowed_globals().items():
        module, _, attr = name.rpartition(".")
        found[(module, attr)] = value
    for attr in ("Metadata", "TensorStorageMetadata", "ChunkStorageMetadata", "StorageMeta",
                 "TensorProperties", "BytesStorageMetadata", "MetadataIndex",
                 "_MEM_FORMAT_ENCODING"):
        found[(metadata.__name__, attr)] = getattr(metadata, attr)
    found[(filesystem.__name__, "_StorageInfo")] = filesystem._StorageInfo
    for attr in ("PosixPath", "WindowsPath", "PurePosixPath", "PureWindowsPath", "Path"):
        found[("pathlib", attr)] = getattr(pathlib, attr)
    for attr in ("contiguous_format", "channels_last", "channels_last_3d", "preserve_format",
                 "strided", "sparse_coo"):  # plain values, which pickle names by global
        found[("torch", attr)] = getattr(torch, attr)
    return found


_RUNS_CODE: list[str] = []


class _SafeUnpickler(pickle.Unpickler):
    allowed: dict[tuple[str, str], Any] = {}

    def find_class(self, module: str, name: str) -> Any:
        value = self.allowed.get((module, name))
        if value is None:
            # DCP's load catches what read_metadata raises (to try a rank's own metadata file)
            # and raises its own error: the global is kept here for load() to see
            _RUNS_CODE.append(f"{module}.{name}")
            raise _RunsCode(f"{module}.{name}")
        return value


def _safe_load(file: Any) -> Any:
    if not _SafeUnpickler.allowed:
        _SafeUnpickler.allowed = _safe_globals()
    return _SafeUnpickler(file).load()


def _load_state_dict(path: str) -> dict[str, Any]:
    import torch
    from torch.distributed.checkpoint import filesystem
    from torch.distributed.checkpoint._traverse import set_element
    from torch.distributed.checkpoint.default_planner import _EmptyStateDictLoadPlanner
    from torch.distributed.checkpoint.state_dict_loader import _load_state_dict

    class SafeBytesPlanner(_EmptyStateDictLoadPlanner):
        def load_bytes(self, read_item: Any, value: io.BytesIO) -> None:
            with torch.serialization.safe_globals([io.BytesIO]):
                loaded = torch.load(value, weights_only=True)
            set_element(self.original_state_dict, self.mappings[read_item.dest_index.fqn],
                        loaded)

    # read_metadata logs a traceback for every refused .metadata before it re-raises
    logging.disable(logging.CRITICAL)
    filesystem.pickle = SimpleNamespace(load=_safe_load, dump=pickle.dump)  # type: ignore[attr-defined]
    state: dict[str, Any] = {}
    _load_state_dict(state_dict=state, storage_reader=filesystem.FileSystemReader(path),
                     no_dist=True, planner=SafeBytesPlanner())
    return state


def load(path: str) -> Reading:
    """DCP's single-process full load (see the module docstring for the two safe steps)."""
    _RUNS_CODE.clear()
    try:
        state = _load_state_dict(path)
    except BaseException as exc:  # every refusal, of any type, is the loader's answer
        if _RUNS_CODE:  # torch would have run it, and what it loads then is anyone's guess
            return Reading(True, ((f"<would run code: {_RUNS_CODE[0][:80]}>", (), "other"),))
        # a CheckpointException wraps each rank's error (and its traceback): that error is the
        # loader's reason
        cause = next(iter(getattr(exc, "failures", {}).values()), (exc,))[0]
        text = f"{type(cause).__name__}: {cause}"
        return Reading(False, reason=text[:200], needs_device=any(t in text for t in _NO_MEMORY))
    out: list[tuple[str, tuple[int, ...], str]] = []
    _flatten(state, None, out)
    return Reading(True, tuple(sorted(out)))


def _state_dicts() -> dict[str, tuple[dict[str, Any], int]]:
    import torch

    generator = torch.Generator().manual_seed(2)
    model = {"w": torch.randn(4, 3, generator=generator), "b": torch.arange(3),
             "h": torch.ones(2, 2, dtype=torch.float16),
             "norm": {"running_mean": torch.zeros(3, dtype=torch.bfloat16),
                      "num_batches_tracked": torch.tensor(7)}}
    optim = {"state": {0: {"exp_avg": torch.zeros(4, 3), "step": torch.tensor(3.0)}},
             "param_groups": [{"lr": 0.1, "params": [0]}]}
    flat = {"a": torch.ones(3, dtype=torch.int8), "e": torch.zeros(0, 2),
            "s": torch.tensor(1.5, dtype=torch.float64), "m": torch.ones(2, dtype=torch.bool),
            "u": torch.ones(2, 3, dtype=torch.uint8)}
    nested = {"layers": [{"w": torch.ones(2, 2)}, {"w": torch.zeros(2, 2)}],
              "blob": io.BytesIO(b"abc"), "epoch": 3, "name": "run"}
    # (state dict, the protocol .metadata is pickled with: torch's own, or 2 for pickle edits)
    return {"dcp/model_optim": ({"model": model, "optim": optim, "epoch": 3}, 2),
            "dcp/flat": (flat, pickle.DEFAULT_PROTOCOL), "dcp/nested": (nested, 2)}


def _save(state: dict[str, Any], protocol: int) -> dcp_edits.Files:
    import torch.distributed.checkpoint as dcp

    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "assuming the intent is to save in a single process"
        dcp.save(state, checkpoint_id=folder)
        files = {p.name: p.read_bytes() for p in Path(folder).iterdir()}
    meta = pickle.loads(files[dcp_edits.METADATA])
    # the save id is a fresh uuid and the checkpoint id the temporary folder: fixed, so a seed
    # (and each input drawn from it) is the same bytes on every run
    meta.storage_meta.save_id, meta.storage_meta.checkpoint_id = "seed", Path("ckpt")
    files[dcp_edits.METADATA] = pickle.dumps(meta, protocol=protocol)
    return tuple(sorted(files.items()))


def seeds() -> list[Seed]:
    """DCP directories written by ``torch.distributed.checkpoint.save`` in one process."""
    return [Seed(name, "torch-dcp", _save(state, protocol), "")
            for name, (state, protocol) in _state_dicts().items()]


def mutate(seed: Seed, others: list[Seed], rng: random.Random) -> tuple[str, Data]:
    """A structured, pickle or file edit (tests/differential/dcp_edits.py)."""
    assert isinstance(seed.data, tuple)
    protocol = 2 if seed.name != "dcp/flat" else pickle.DEFAULT_PROTOCOL
    return dcp_edits.mutate(seed.data, protocol, rng)


FAMILIES = [Family("torch-dcp", seeds, mutate, load,
                   imports=("torch", "torch.distributed.checkpoint"))]
