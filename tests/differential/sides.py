"""Both readings of one file: the framework loader's (in a worker process with a memory cap, so a
hostile file that makes it allocate or crash costs only the worker) and ckptdiff's.

A reading is ``Reading(accepted, tensors, reason)``: ``tensors`` maps each key to its shape and
dtype in ckptdiff's vocabulary. A bytes key torch returns is spelled ``b'w'``, as ckptdiff must
spell it: ``load_state_dict`` never matches it to the parameter ``w``.
"""

from __future__ import annotations

import resource
import warnings
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, NamedTuple

from ckptdiff.dtypes import TORCH_DTYPES

WORKER_MEMORY = 3 << 30


class Reading(NamedTuple):
    """One reader's verdict on one file."""

    accepted: bool
    tensors: tuple[tuple[str, tuple[int, ...], str], ...] = ()
    reason: str = ""
    flagged: bool = False  # ckptdiff accepted, but said the loader refuses the file
    container: str | None = None  # the container ckptdiff chose (``state_dict`` …)
    needs_device: bool = False  # refused only for a device this machine lacks (CUDA …)


# What torch says when a file needs a device this (CPU-only) machine lacks: storages saved on a
# GPU, ``mps`` or a ``privateuseone`` backend (retried with ``map_location="cpu"``, which reads
# the same tensors), or a ``torch.cuda`` tensor class called (no retry helps; on a CUDA machine
# the call succeeds).
_NO_DEVICE = ("torch.cuda.is_available() is False", "Torch not compiled with CUDA enabled",
              "Storage device not recognized", "device module is not registered")


def _key(key: object) -> str:
    if isinstance(key, (str, int)):
        return str(key)
    return repr(key) if isinstance(key, bytes) else f"<{type(key).__name__}>{key!r}"


def _flatten(value: Any, prefix: str | None,
             out: list[tuple[str, tuple[int, ...], str]]) -> None:
    """Tensors of ``value`` by dotted path (``prefix`` None at the top: an entry named ``""``
    keeps its empty segment, as ckptdiff's container key ``""`` does)."""
    import torch

    if isinstance(value, torch.Tensor):
        dtype = TORCH_DTYPES.get(str(value.dtype).removeprefix("torch."), "other")
        out.append((prefix or "", tuple(value.shape), dtype))
    elif isinstance(value, dict):
        for key, item in value.items():
            _flatten(item, _key(key) if prefix is None else f"{prefix}.{_key(key)}", out)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _flatten(item, str(index) if prefix is None else f"{prefix}.{index}", out)


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (WORKER_MEMORY, WORKER_MEMORY))
    import torch  # noqa: F401 - imported once per worker, not once per input


def load_in_worker(path: str, family: str) -> Reading:
    """The framework's reading of ``path`` (runs in the worker)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if family == "safetensors":
                from safetensors import safe_open

                from ckptdiff.dtypes import SAFETENSORS_DTYPES

                # The library's own reading of the header (as get_slice reports it, without
                # materializing): a dtype torch lacks (F6_*) or a packed one (F4, halved by
                # get_tensor) is the torch loader's matter, judged by the verdict, not the
                # file's.
                out = []
                with safe_open(path, "np") as handle:
                    for key in handle.keys():  # noqa: SIM118 - safe_open is not a dict
                        view = handle.get_slice(key)
                        out.append((key, tuple(view.get_shape()),
                                    SAFETENSORS_DTYPES.get(view.get_dtype(), "other")))
                return Reading(True, tuple(sorted(out)))
            return _torch_load(path, family, None)
    except BaseException as exc:  # every refusal, of any type, is the loader's answer
        reason = f"{type(exc).__name__}: {str(exc)[:200]}"
        if not any(text in str(exc) for text in _NO_DEVICE):
            return Reading(False, reason=reason)
    try:
        return _torch_load(path, family, "cpu")
    except BaseException as exc:
        reason = f"{type(exc).__name__}: {str(exc)[:200]}"
        return Reading(False, reason=reason, needs_device=any(t in str(exc) for t in _NO_DEVICE))


def _torch_load(path: str, family: str, map_location: str | None) -> Reading:
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = torch.load(path, weights_only=True, mmap=family == "torch-zip",
                            map_location=map_location)
    out: list[tuple[str, tuple[int, ...], str]] = []
    _flatten(loaded, None, out)
    return Reading(True, tuple(sorted(out)))


class Loader:
    """A one-worker process pool that survives its worker crashing."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None

    def read(self, path: str, family: str) -> Reading:
        """The loader's reading; a crashed worker reads as a refusal and is replaced."""
        if self._pool is None:
            self._pool = ProcessPoolExecutor(1, initializer=_limit_memory)
        try:
            return self._pool.submit(load_in_worker, path, family).result(timeout=120)
        except BrokenProcessPool:
            self.close()
            return Reading(False, reason="the loader's process crashed")

    def close(self) -> None:
        """Stop the worker."""
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None


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
    return Reading(True, tensors, flagged=bool(refuses), container=manifest.container_key)
