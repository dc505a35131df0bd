"""The ``numpy-npy`` reader: one ``.npy`` file (``numpy.save``), by its header alone.

The manifest holds one tensor keyed by the file's stem (``weights.npy`` → ``weights``: the key
the same array has in an ``.npz``), ``device`` and ``trainable`` ``null``, ``kind``
``parameter``; the dtype is numpy's in the shared vocabulary (byte order does not change it;
fixed-width strings are ``string``, structured, datetime and void dtypes ``other`` with their
exact size). ``metadata["numpy"]["arrays"]`` keeps each array's ``descr``, ``fortran_order`` and
format version. The data must be in the file (``np.load`` fails on a short one); only the first
bytes up to the end of the header are read (exactly the header's bytes).
"""

from __future__ import annotations

from typing import ClassVar

from ckptdiff.errors import CkptdiffError, CorruptFileError, UsageError
from ckptdiff.manifest import Manifest, TensorInfo
from ckptdiff.readers.base import CountingFile, Location
from ckptdiff.readers.numpy.header import (
    MAGIC,
    PREFIX_BYTES,
    NpyHeader,
    header_length,
    parse_header,
)


def array_info(key: str, header: NpyHeader, storage: str) -> TensorInfo:
    """The manifest entry of one array."""
    return TensorInfo(key=key, shape=header.shape, dtype=header.dtype, device=None,
                      nbytes=header.nbytes, storage=storage, aliases=(), kind="parameter",
                      trainable=None)


def array_facts(header: NpyHeader) -> dict[str, object]:
    """What ``metadata["numpy"]["arrays"]`` says about one array."""
    return {"descr": header.descr, "fortran_order": header.fortran_order,
            "version": header.version}


def refuse_key(path: Location, key: str | None) -> None:
    """NumPy files hold no containers to pick from: a ``key`` is a usage error."""
    if key is not None:
        raise UsageError(f"{path}: --key {key!r} does not apply: a NumPy file is a flat set of "
                         "arrays, with no container to pick")


class NpyReader:
    """A ``.npy`` file (any extension), by its magic."""

    name: ClassVar[str] = "numpy-npy"
    extensions: ClassVar[tuple[str, ...]] = (".npy",)
    description: ClassVar[str] = "NumPy .npy array (header only)"
    requires: ClassVar[tuple[str, ...]] = ()
    extra: ClassVar[str | None] = None

    def sniff(self, head: bytes, path: Location) -> bool:
        """The file starts with the ``\\x93NUMPY`` magic."""
        return head.startswith(MAGIC)

    def read(self, path: Location, key: str | None = None) -> Manifest:
        """Parse the header, check the data is all there; reads the header's bytes only."""
        refuse_key(path, key)
        label = str(path)
        try:
            with CountingFile(path) as file:
                prefix = file.read(12)
                _, start, length = header_length(prefix, label)
                prefix += file.read(max(min(start + length, PREFIX_BYTES) - len(prefix), 0))
                size, bytes_read = file.size, file.bytes_read
        except OSError as exc:
            raise CkptdiffError(f"{label}: cannot read: {exc.strerror or exc}") from None
        header = parse_header(prefix, label)
        if header.data_offset + header.nbytes > size:
            raise CorruptFileError(
                f"{label}: the array needs {header.nbytes:,} bytes of data after its header but "
                f"the file holds {max(size - header.data_offset, 0):,}: truncated download?")
        stem = path.name[:-4] if path.name.lower().endswith(".npy") else path.name
        return Manifest(path=label, format=self.name,
                        tensors=(array_info(stem, header, path.name),),
                        metadata={"numpy": {"arrays": {stem: array_facts(header)}},
                                  "bytes_read": bytes_read})
