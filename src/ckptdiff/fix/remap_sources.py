"""Where a tensor's bytes are, for the one command that reads them (``remap``).

Each source yields a tensor as C-ordered little-endian bytes, in chunks, so that copying a
checkpoint holds at most one chunk (or, for a tensor whose layout changes, one tensor) in memory:

- safetensors (one file, shards, a folder): the byte range its header gives;
- torch zip (``torch.save`` since 1.6): the range of the storage member in the archive (a view
  with gaps, or a transposed stride, is gathered with numpy);
- Keras ``.weights.h5``/``.h5``/``.keras``: the HDF5 dataset its storage names (h5py).
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Protocol

from ckptdiff.dtypes import itemsize, numel
from ckptdiff.errors import CkptdiffError, CorruptFileError, MissingDependencyError, UsageError
from ckptdiff.manifest import Manifest, TensorInfo
from ckptdiff.readers.safetensors.header import read_header

CHUNK = 16 << 20
SUPPORTED = ("safetensors", "safetensors-sharded", "torch-zip", "keras-weights-h5", "keras-h5",
             "keras-zip")


class TensorSource(Protocol):
    """Reads one tensor's bytes at a time."""

    def chunks(self, info: TensorInfo) -> Iterator[bytes]:
        """The tensor's bytes, C order, little-endian, in pieces."""
        ...

    def close(self) -> None:
        """Release open files."""
        ...


def open_source(manifest: Manifest, path: Path) -> TensorSource:
    """A byte source for the checkpoint ``manifest`` was read from."""
    if manifest.path != str(path):  # a snapshot keeps the path of what it describes
        raise UsageError(f"{path}: describes {manifest.path} but holds no weights (a manifest "
                         "snapshot?): remap needs the checkpoint itself")
    if manifest.format in ("safetensors", "safetensors-sharded"):
        return SafetensorsSource(path if path.is_dir() else path.parent)
    if manifest.format == "torch-zip":
        if manifest.metadata.get("byteorder", "little") != "little":
            raise UsageError(f"{path}: remap reads little-endian torch checkpoints only")
        return TorchZipSource(path)
    if manifest.format in ("keras-weights-h5", "keras-h5", "keras-zip"):
        return H5Source(path, manifest.format == "keras-zip")
    raise UsageError(f"{path}: remap reads {', '.join(SUPPORTED)} checkpoints, not "
                     f"{manifest.format}: save the weights in one of those first")


def element_size(info: TensorInfo, path: Path) -> int:
    """Bytes per element, or a ``UsageError`` for dtypes without a fixed size."""
    size = itemsize(info.dtype)
    if size is None:
        raise UsageError(f"{path}: {info.key} has dtype {info.dtype}, which remap cannot copy")
    return size


class SafetensorsSource:
    """Byte ranges of safetensors files, by their headers."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.files: dict[str, tuple[IO[bytes], int, dict[str, tuple[int, int]]]] = {}

    def chunks(self, info: TensorInfo) -> Iterator[bytes]:
        """Copy the header's byte range of ``info`` in pieces."""
        name = info.storage or ""
        if name not in self.files:
            path = self.base / name
            header = read_header(path)
            try:
                handle: IO[bytes] = path.open("rb")
            except OSError as exc:
                raise CkptdiffError(f"{path}: cannot read: {exc.strerror or exc}") from None
            start = 8 + int.from_bytes(handle.read(8), "little")
            ranges = {e.key: (e.begin, e.end) for e in header.entries}
            self.files[name] = (handle, start, ranges)
        stream, start, ranges = self.files[name]
        if info.key not in ranges:
            raise CorruptFileError(f"{self.base / name}: has no tensor {info.key!r}")
        begin, end = ranges[info.key]
        stream.seek(start + begin)
        yield from _read_range(stream, end - begin, f"{self.base / name}")

    def close(self) -> None:
        """Close every shard."""
        for handle, _, _ in self.files.values():
            handle.close()


class TorchZipSource:
    """Storage members of a torch zip archive."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.archive = zipfile.ZipFile(path)
        except (OSError, zipfile.BadZipFile) as exc:
            raise CkptdiffError(f"{path}: cannot open the archive: {exc}") from None

    def chunks(self, info: TensorInfo) -> Iterator[bytes]:
        """The tensor's elements from its storage member (gathered when not contiguous)."""
        size = element_size(info, self.path)
        count = numel(info.shape)
        if count == 0:
            return
        stride = info.stride or _contiguous(info.shape)
        offset = (info.storage_offset or 0) * size
        try:
            member = self.archive.open(info.storage or "")
        except KeyError:
            raise CorruptFileError(f"{self.path}: no storage {info.storage!r} for "
                                   f"{info.key!r}") from None
        with member:
            member.seek(offset)
            if _is_contiguous(info.shape, stride):
                yield from _read_range(member, count * size, str(self.path))
                return
            span = 1 + sum((d - 1) * s for d, s in zip(info.shape, stride, strict=True))
            raw = b"".join(_read_range(member, span * size, str(self.path)))
        yield _gather(raw, info.shape, stride, size)

    def close(self) -> None:
        """Close the archive."""
        self.archive.close()


class H5Source:
    """HDF5 datasets of Keras files (inside the ``.keras`` zip for ``keras-zip``)."""

    def __init__(self, path: Path, zipped: bool) -> None:
        try:
            import h5py
        except ImportError:
            raise MissingDependencyError("h5py", "h5", "reading Keras weights") from None
        self.path = path
        self.zipped = zipped
        self.archive: zipfile.ZipFile | None = None
        self.files: dict[str, Any] = {}
        self.h5py = h5py

    def _file(self, member: str) -> Any:
        if member not in self.files:
            if self.zipped:
                self.archive = self.archive or zipfile.ZipFile(self.path)
                self.files[member] = self.h5py.File(self.archive.open(member), "r")
            else:
                self.files[member] = self.h5py.File(self.path, "r")
        return self.files[member]

    def chunks(self, info: TensorInfo) -> Iterator[bytes]:
        """The dataset's values as little-endian bytes."""
        import numpy

        storage = info.storage or ""
        member, dataset = storage.split("/", 1) if self.zipped else ("", storage)
        try:
            values = numpy.asarray(self._file(member)[dataset][()])
        except (KeyError, OSError) as exc:
            raise CorruptFileError(f"{self.path}: cannot read {storage!r}: {exc}") from None
        if values.shape != info.shape:
            raise CorruptFileError(f"{self.path}: {storage!r} is {list(values.shape)}, the "
                                   f"manifest says {list(info.shape)}")
        yield numpy.ascontiguousarray(values.astype(values.dtype.newbyteorder("<"))).tobytes()

    def close(self) -> None:
        """Close the HDF5 files and the archive."""
        for handle in self.files.values():
            handle.close()
        if self.archive is not None:
            self.archive.close()


def _read_range(handle: IO[bytes], length: int, label: str) -> Iterator[bytes]:
    left = length
    while left > 0:
        piece = handle.read(min(CHUNK, left))
        if not piece:
            raise CorruptFileError(f"{label}: ends {left:,} bytes before a tensor does: "
                                   "truncated?")
        left -= len(piece)
        yield piece


def _contiguous(shape: tuple[int, ...]) -> tuple[int, ...]:
    strides, step = [], 1
    for dim in reversed(shape):
        strides.append(step)
        step *= max(dim, 1)
    return tuple(reversed(strides))


def _is_contiguous(shape: tuple[int, ...], stride: tuple[int, ...]) -> bool:
    expected = _contiguous(shape)
    return all(d == 1 or s == e for d, s, e in zip(shape, stride, expected, strict=True))


def _gather(raw: bytes, shape: tuple[int, ...], stride: tuple[int, ...], size: int) -> bytes:
    try:
        import numpy
        from numpy.lib.stride_tricks import as_strided
    except ImportError:
        raise MissingDependencyError("numpy", "torch", "copying a strided tensor") from None
    flat = numpy.frombuffer(raw, dtype=numpy.dtype((numpy.void, size)))
    view = as_strided(flat, shape=shape, strides=tuple(s * size for s in stride))
    return numpy.ascontiguousarray(view).tobytes()
