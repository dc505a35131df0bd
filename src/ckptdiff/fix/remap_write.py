"""Writing the remapped checkpoint: safetensors incrementally, ``.pth`` with torch.

safetensors needs no library: every shape, dtype and size is known before the first byte is
written, so the header goes first and each tensor's bytes follow as they are read — memory holds
one chunk (one tensor when its layout changes). A ``.pth`` is written by ``torch.save`` of the
whole state dict. Both are written to a temporary file beside the output, then renamed over it.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ckptdiff.dtypes import SAFETENSORS_DTYPES, nbytes
from ckptdiff.errors import CkptdiffError, MissingDependencyError, UsageError
from ckptdiff.manifest import TensorInfo
from ckptdiff.rename.results import ConversionOp

_SAFETENSORS_CODES = {name: code for code, name in SAFETENSORS_DTYPES.items()}
TORCH_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt")


@dataclass(frozen=True)
class Output:
    """One tensor of the written checkpoint: where it comes from and how it changes."""

    key: str
    source: TensorInfo
    shape: tuple[int, ...]
    axes: tuple[int, ...] | None = None
    # A converted tensor: the source tensors it is made of (``source`` is the first), the ops
    # that make it, and which of the ops' results it is (a split has several).
    parts: tuple[TensorInfo, ...] = ()
    ops: tuple[ConversionOp, ...] = ()
    piece: int = 0

    @property
    def nbytes(self) -> int:
        """Bytes of the tensor (its dtype has a fixed size: checked before writing)."""
        return nbytes(self.source.dtype, self.shape) or 0


Produce = Callable[[Output], Iterator[bytes]]


def output_format(path: Path) -> str:
    """``safetensors`` or ``torch`` from the output name; ``UsageError`` for anything else."""
    name = path.name.lower()
    if name.endswith(".safetensors"):
        return "safetensors"
    if name.endswith(TORCH_SUFFIXES):
        return "torch"
    raise UsageError(f"{path}: the output must end in .safetensors or one of "
                     f"{', '.join(TORCH_SUFFIXES)}")


def check_dtypes(outputs: Sequence[Output], fmt: str, path: Path) -> None:
    """Refuse dtypes the output format cannot hold, before anything is written."""
    for out in outputs:
        dtype = out.source.dtype
        if nbytes(dtype, out.shape) is None or (fmt == "safetensors"
                                                and dtype not in _SAFETENSORS_CODES):
            raise UsageError(f"{path}: {out.key} has dtype {dtype}, which a {fmt} file written "
                             "by ckptdiff cannot hold")


def write(path: Path, outputs: Sequence[Output], produce: Produce,
          metadata: dict[str, str]) -> None:
    """Write ``outputs`` (bytes from ``produce``) to ``path`` in the format its name says."""
    fmt = output_format(path)
    check_dtypes(outputs, fmt, path)
    directory = path.parent if str(path.parent) else Path(".")
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    except OSError as exc:
        raise CkptdiffError(f"{path}: cannot write: {exc.strerror or exc}") from None
    os.close(handle)
    try:
        if fmt == "safetensors":
            _write_safetensors(Path(temporary), outputs, produce, metadata)
        else:
            _write_torch(Path(temporary), outputs, produce)
        os.replace(temporary, path)
    except OSError as exc:
        raise CkptdiffError(f"{path}: cannot write: {exc.strerror or exc}") from None
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def _write_safetensors(path: Path, outputs: Sequence[Output], produce: Produce,
                       metadata: dict[str, str]) -> None:
    header: dict[str, object] = {"__metadata__": metadata} if metadata else {}
    offset = 0
    for out in outputs:
        size = out.nbytes
        header[out.key] = {"dtype": _SAFETENSORS_CODES[out.source.dtype],
                           "shape": list(out.shape), "data_offsets": [offset, offset + size]}
        offset += size
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)  # data starts 8-byte aligned, as the library writes it
    with path.open("wb") as file:
        file.write(len(text).to_bytes(8, "little"))
        file.write(text)
        for out in outputs:
            written = 0
            for piece in produce(out):
                file.write(piece)
                written += len(piece)
            if written != out.nbytes:
                raise CkptdiffError(f"{path}: {out.key}: read {written:,} bytes, expected "
                                    f"{out.nbytes:,}")


def _write_torch(path: Path, outputs: Sequence[Output], produce: Produce) -> None:
    try:
        import torch
    except ImportError:
        raise MissingDependencyError("torch", "torch", "writing a .pth checkpoint") from None
    state = {}
    for out in outputs:
        dtype = getattr(torch, out.source.dtype)  # vocabulary names are torch names
        raw = bytearray(b"".join(produce(out)))
        if raw:
            state[out.key] = torch.frombuffer(raw, dtype=dtype).reshape(out.shape)
        else:
            state[out.key] = torch.empty(out.shape, dtype=dtype)
    torch.save(state, path)
