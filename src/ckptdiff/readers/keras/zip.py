"""Reader of Keras 3 ``.keras`` archives (``keras-zip``): a zip of ``config.json``,
``metadata.json`` and ``model.weights.h5``.

The inner HDF5 file is opened where it lies in the zip: Keras stores it uncompressed, so h5py
reads a window of the archive and only the headers it needs are read (a compressed member is
read through zipfile's decompressor instead). ``config.json`` supplies what the weights file
lacks: ``trainable`` flags, and layer names for files written before Keras put them on ``vars``.
"""

from __future__ import annotations

import io
import json
import struct
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any, ClassVar, cast

from ckptdiff.errors import CkptdiffError, CorruptFileError, UsageError
from ckptdiff.manifest import Manifest
from ckptdiff.readers.base import CountingFile, Location, open_binary, open_counting, read_exact
from ckptdiff.readers.keras.config import ConfigIndex, parse_config
from ckptdiff.readers.keras.hdf5 import Walker, hdf5_errors, open_hdf5
from ckptdiff.readers.keras.saved_layers import saved_layer_tensors
from ckptdiff.readers.keras.v3_h5 import saved_layers
from ckptdiff.readers.native_sandbox import isolated_manifest
from ckptdiff.readers.zip_safety import (
    check_expansion,
    check_zip_directory,
    local_header_problem,
    read_member,
)

CONFIG, METADATA, WEIGHTS = "config.json", "metadata.json", "model.weights.h5"
MAX_CONFIG_BYTES = 64 * 1024 * 1024
MAX_METADATA_BYTES = 1024 * 1024
_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature … file name length, extra field length


class WindowFile(io.RawIOBase):
    """A read-only view of ``size`` bytes of ``base`` starting at ``start`` (a stored member)."""

    def __init__(self, base: IO[bytes] | io.RawIOBase, start: int, size: int) -> None:
        super().__init__()
        self._base, self._start, self._size, self._pos = base, start, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        origin = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, origin + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        count = max(0, min(len(view), self._size - self._pos))
        if count == 0:
            return 0
        self._base.seek(self._start + self._pos)
        data = self._base.read(count)
        view[:len(data)] = data
        self._pos += len(data)
        return len(data)


def _is_keras_zip(path: Location) -> bool:
    try:
        with open_binary(path) as handle, zipfile.ZipFile(handle) as archive:
            names = set(archive.namelist())
    except Exception:  # a sniffer never raises
        return False
    return CONFIG in names and (WEIGHTS in names or METADATA in names)


def _member_text(archive: zipfile.ZipFile, counting: CountingFile, name: str, cap: int,
                 path: Location) -> str | None:
    try:
        info = archive.getinfo(name)
    except KeyError:
        return None
    if info.file_size > cap:
        raise CorruptFileError(f"{path}: {name} is {info.file_size:,} bytes, more than a Keras "
                               f"archive's {name} plausibly holds ({cap:,})")
    data = read_member(cast(IO[bytes], counting), info, str(path), cap)  # local header checked
    return data.decode("utf-8", "replace")


def _weights_file(archive: zipfile.ZipFile, counting: CountingFile,
                  path: Location) -> IO[bytes] | io.RawIOBase:
    try:
        info = archive.getinfo(WEIGHTS)
    except KeyError:
        raise CorruptFileError(f"{path}: a .keras archive without {WEIGHTS}") from None
    if info.compress_type != zipfile.ZIP_STORED:
        check_expansion(info, str(path))
        return archive.open(info)  # seekable; seeks back re-decompress from the member's start
    counting.seek(info.header_offset)
    header = read_exact(cast(IO[bytes], counting), _LOCAL_HEADER.size,
                        f"the zip header of {WEIGHTS}", str(path))
    signature, name_length, extra_length = _LOCAL_HEADER.unpack(header)
    mismatch = local_header_problem(info, header)
    if mismatch and signature == b"PK\x03\x04":
        raise CorruptFileError(f"{path}: refused {WEIGHTS}: its local zip header {mismatch} "
                               "the central directory")
    start = info.header_offset + _LOCAL_HEADER.size + name_length + extra_length
    if signature != b"PK\x03\x04" or start + info.file_size > counting.size:
        raise CorruptFileError(f"{path}: {WEIGHTS} runs past the end of the archive "
                               f"({counting.size:,} bytes): truncated download?")
    return WindowFile(counting, start, info.file_size)


class KerasZipReader:
    """Keras 3 ``model.save("x.keras")`` archives."""

    name: ClassVar[str] = "keras-zip"
    extensions: ClassVar[tuple[str, ...]] = (".keras",)
    description: ClassVar[str] = "Keras 3 model archive (.keras)"
    requires: ClassVar[tuple[str, ...]] = ("h5py",)
    extra: ClassVar[str | None] = "h5"

    def sniff(self, head: bytes, path: Location) -> bool:
        """A zip holding ``config.json`` and ``model.weights.h5`` (or ``metadata.json``)."""
        return head.startswith(b"PK\x03\x04") and _is_keras_zip(path)

    def read(self, path: Location, key: str | None = None) -> Manifest:
        """Config, metadata and the inner weights file's headers; no weight bytes are read.
        The HDF5 library runs in a forked child with a time limit (:mod:`native_sandbox`)."""
        return isolated_manifest(lambda: self._read(path, key), path, WEIGHTS)

    def _read(self, path: Location, key: str | None) -> Manifest:
        if key is not None:
            raise UsageError(f"{path}: a .keras archive has no container entries "
                             f"to pick with key {key!r}")
        counting = open_counting(path)
        try:
            with _archive_errors(path):
                archive = _open_zip(counting, path)
                config_text = _member_text(archive, counting, CONFIG, MAX_CONFIG_BYTES, path)
                if config_text is None:
                    raise CorruptFileError(f"{path}: a zip, but not a .keras archive: "
                                           f"no {CONFIG}")
                config = parse_config(config_text, str(path), CONFIG)
                saved = _member_text(archive, counting, METADATA, MAX_METADATA_BYTES, path)
                weights = _weights_file(archive, counting, path)
                compressed = not isinstance(weights, WindowFile)
                label = f"{path}: {WEIGHTS}"
                with open_hdf5(weights, label) as root, hdf5_errors(label):
                    layers = saved_layers(root, Walker(label), f"{WEIGHTS}/")
        finally:
            counting.close()
        tensors = saved_layer_tensors(layers, config.names_by_path, config.layer_trainable)
        metadata = _metadata(config, saved)
        metadata.update({
            "weights_member": WEIGHTS,
            "weights_compressed": compressed,
            "saved_layers": sum(1 for layer in layers if layer.path),
            "positional_keys": sum(1 for t in tensors if t.kind in ("parameter", "buffer")
                                   and "/vars/" in f"/{t.key}"),
            "bytes_read": counting.bytes_read,
        })
        return Manifest(path=str(path), format=self.name, tensors=tuple(tensors),
                        metadata=metadata)


@contextmanager
def _archive_errors(path: Location) -> Iterator[None]:
    try:
        yield
    except CkptdiffError:
        raise
    except Exception as exc:  # zipfile/zlib raise many types on damaged archives
        raise CorruptFileError(f"{path}: not a readable .keras archive (truncated?): "
                               f"{type(exc).__name__}: {exc}") from None


def _open_zip(counting: CountingFile, path: Location) -> zipfile.ZipFile:
    try:
        archive = zipfile.ZipFile(counting)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise CorruptFileError(f"{path}: not a readable zip archive (truncated?): {exc}") from None
    check_zip_directory(archive, counting.size, str(path))
    return archive


def _metadata(config: ConfigIndex, saved: str | None) -> dict[str, Any]:
    facts: dict[str, Any] = {"model_class": config.model_class, "model_name": config.model_name}
    try:
        data = json.loads(saved) if saved else {}
    except (ValueError, RecursionError):
        data = {}
    if isinstance(data, dict):
        for field in ("keras_version", "date_saved"):
            if isinstance(data.get(field), str):
                facts[field] = data[field]
    return facts
