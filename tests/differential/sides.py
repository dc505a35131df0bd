"""Both readings of one file: the framework loader's (in a worker process with a memory cap, so a
hostile file that makes it allocate or crash costs only the worker) and ckptdiff's.

A reading is ``Reading(accepted, tensors, reason)``: ``tensors`` maps each key to its shape and
dtype in ckptdiff's vocabulary. Which loader reads a file is its seed's family
(tests/differential/families.py); each family's workers are its own, so a loader that needs
TensorFlow never shares a process (or a memory cap) with one that needs torch.
"""

from __future__ import annotations

import importlib
import resource
import warnings
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import NamedTuple


class Reading(NamedTuple):
    """One reader's verdict on one file."""

    accepted: bool
    tensors: tuple[tuple[str, tuple[int, ...], str], ...] = ()
    reason: str = ""
    flagged: bool = False  # ckptdiff accepted, but said the loader refuses the file
    container: str | None = None  # the container ckptdiff chose (``state_dict`` …)
    # the optimizer containers whose slots ckptdiff lists beside it, keyed by their full path
    optimizers: tuple[str, ...] = ()
    needs_device: bool = False  # refused only for a device this machine lacks (CUDA …)
    loader_only: bool = False  # refused only on checking tensor bytes a header reader never reads


def _start_worker(memory: int, imports: tuple[str, ...]) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    for name in imports:  # imported once per worker, not once per input
        importlib.import_module(name)


def load_in_worker(path: str, family: str) -> Reading:
    """The framework's reading of ``path`` (runs in the worker)."""
    from tests.differential.families import registry

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return registry()[family].load(path)
    except BaseException as exc:  # every refusal, of any type, is the loader's answer
        return Reading(False, reason=f"{type(exc).__name__}: {str(exc)[:200]}")


class Loader:
    """One worker process per family; a crashed worker reads as a refusal and is replaced."""

    def __init__(self) -> None:
        self._pools: dict[str, ProcessPoolExecutor] = {}

    def read(self, path: str, family: str) -> Reading:
        """The loader's reading of ``path`` as a file of ``family``."""
        from tests.differential.families import registry

        pool = self._pools.get(family)
        if pool is None:
            spec = registry()[family]
            pool = ProcessPoolExecutor(1, initializer=_start_worker,
                                       initargs=(spec.memory, spec.imports))
            self._pools[family] = pool
        try:
            return pool.submit(load_in_worker, path, family).result(timeout=120)
        except BrokenProcessPool:
            self._pools.pop(family).shutdown(cancel_futures=True)
            return Reading(False, reason="the loader's process crashed")

    def close(self) -> None:
        """Stop every worker."""
        for pool in self._pools.values():
            pool.shutdown(cancel_futures=True)
        self._pools.clear()


def ckptdiff_reading(path: str) -> Reading:
    """ckptdiff's reading; anything but a CkptdiffError propagates (a crash is a bug)."""
    from ckptdiff.errors import CkptdiffError
    from ckptdiff.readers import read

    try:
        manifest = read(path)
    except CkptdiffError as exc:
        return Reading(False, reason=f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
    tensors = tuple(sorted((t.key, tuple(t.shape), t.dtype) for t in manifest.tensors))
    refuses = manifest.metadata.get("weights_only_refuses") or any(
        "torch.load cannot read" in w for w in manifest.metadata.get("warnings", []))
    optimizers = tuple(c["key"] for c in manifest.metadata.get("containers", [])
                       if c.get("role") == "optimizer")
    return Reading(True, tensors, flagged=bool(refuses), container=manifest.container_key,
                   optimizers=optimizers)
