"""Safe, header-only access to Keras HDF5 files through h5py, shared by the Keras readers.

Only metadata is touched: group and link listings, dataset shapes and dtypes, and small
attributes (``layer_names``, ``model_config``). Dataset values are never read. Links are never
followed: an external link, a virtual dataset or a dataset stored in an external raw file would
make h5py open other files named by the file, so they are refused as unsafe (exit code 3); a soft
link is refused as corrupt, since Keras never writes one.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

from ckptdiff.errors import (
    CkptdiffError,
    CorruptFileError,
    MissingDependencyError,
    UnsafeContentError,
)

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
# HDF5 looks for its superblock at 0 and at every power of two from 512 (a user block).
SIGNATURE_OFFSETS = (0, 512, 1024, 2048)
MAX_ATTRIBUTE_BYTES = 64 * 1024 * 1024  # model_config of very large models stays far below
MAX_ATTRIBUTE_ITEMS = 1_000_000
MAX_OBJECTS = 2_000_000  # groups and datasets visited in one file
MAX_DEPTH = 64


class ExternalReferenceError(UnsafeContentError):
    """The HDF5 file points at other files (external link, virtual or external dataset)."""

    def __init__(self, path: str, where: str, what: str) -> None:
        CkptdiffError.__init__(
            self, f"{path}: refused: {where} is {what}, which points outside the file; "
            "Keras never writes one and ckptdiff follows none")
        self.path = path
        self.globals = ()


def has_hdf5_signature(head: bytes) -> bool:
    """True when ``head`` holds the HDF5 superblock signature at an offset HDF5 searches."""
    return any(head[at:at + len(HDF5_SIGNATURE)] == HDF5_SIGNATURE for at in SIGNATURE_OFFSETS)


def import_h5py(purpose: str) -> Any:
    """The h5py module, or the one-line install hint."""
    try:
        import h5py
    except ImportError:
        raise MissingDependencyError("h5py", "h5", purpose) from None
    return h5py


@contextmanager
def hdf5_errors(path: str) -> Iterator[None]:
    """Turn whatever h5py raises on hostile or truncated input into one ``CorruptFileError``."""
    try:
        yield
    except CkptdiffError:
        raise
    except Exception as exc:  # h5py raises OSError, KeyError, ValueError, RuntimeError, …
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CorruptFileError(
            f"{path}: not a readable HDF5 file (truncated?): {message}") from None


@contextmanager
def open_hdf5(fileobj: IO[bytes] | io.RawIOBase, path: str) -> Iterator[Any]:
    """An h5py file over ``fileobj`` (so its reads are counted), closed on exit."""
    h5py = import_h5py("reading Keras HDF5 files")
    with hdf5_errors(path):
        handle = h5py.File(fileobj, "r")
        try:
            yield handle
        finally:
            handle.close()


class Walker:
    """Visits groups and datasets by hard links only, with limits on count and depth."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.visited = 0
        self._h5py = import_h5py("reading Keras HDF5 files")

    def children(self, group: Any, where: str) -> list[tuple[str, Any]]:
        """``(name, object)`` of every member of ``group``; refuses links that are not hard."""
        found = []
        for name in list(group):
            found.append((name, self.child(group, name, f"{where}/{name}")))
        return found

    def child(self, group: Any, name: str, where: str) -> Any:
        """The member ``name`` of ``group``, opened only when it is a hard link."""
        link = group.get(name, getlink=True)
        if link is None:
            raise CorruptFileError(f"{self.path}: {where} does not exist")
        if isinstance(link, self._h5py.ExternalLink):
            raise ExternalReferenceError(self.path, where, "an HDF5 external link")
        if not isinstance(link, self._h5py.HardLink):
            raise CorruptFileError(f"{self.path}: {where} is a {type(link).__name__}, "
                                   "not a group or dataset; Keras never writes links")
        self.visited += 1
        if self.visited > MAX_OBJECTS:
            raise CorruptFileError(f"{self.path}: more than {MAX_OBJECTS:,} HDF5 objects")
        if where.count("/") > MAX_DEPTH:
            raise CorruptFileError(f"{self.path}: HDF5 groups nested deeper than {MAX_DEPTH}")
        obj = group[name]
        if isinstance(obj, self._h5py.Dataset):
            self.check_dataset(obj, where)
        return obj

    def resolve(self, group: Any, relative: str, where: str) -> Any:
        """The object at ``relative`` (``dense/kernel:0``) below ``group``, link by link."""
        parts = relative.split("/")
        if any(part in ("", ".", "..") for part in parts):
            raise CorruptFileError(f"{self.path}: invalid HDF5 path {relative!r} in {where}")
        obj = group
        for depth, part in enumerate(parts):
            if not self.is_group(obj):
                raise CorruptFileError(f"{self.path}: {where}/{'/'.join(parts[:depth])} "
                                       "is a dataset, not a group")
            obj = self.child(obj, part, f"{where}/{'/'.join(parts[:depth + 1])}")
        return obj

    def is_group(self, obj: Any) -> bool:
        """True for an HDF5 group."""
        return isinstance(obj, self._h5py.Group)

    def is_dataset(self, obj: Any) -> bool:
        """True for an HDF5 dataset."""
        return isinstance(obj, self._h5py.Dataset)

    def check_dataset(self, dataset: Any, where: str) -> None:
        """Refuse datasets whose values live in other files."""
        if dataset.is_virtual:
            raise ExternalReferenceError(self.path, where, "a virtual dataset")
        if dataset.external:
            raise ExternalReferenceError(self.path, where, "a dataset stored in external files")


def read_attribute(obj: Any, name: str, path: str) -> Any:
    """One attribute's value after checking its size, or None when it is absent."""
    if name not in obj.attrs:
        return None
    attr_id = obj.attrs.get_id(name)
    items = 1
    for dim in attr_id.shape or ():
        items *= int(dim)
    # HDF5 reports an empty attribute's storage size (0) as an error, so only ask for others.
    if items > MAX_ATTRIBUTE_ITEMS or (items and attr_id.get_storage_size() > MAX_ATTRIBUTE_BYTES):
        raise CorruptFileError(f"{path}: attribute {name!r} is implausibly large")
    return obj.attrs[name]


def as_text(value: Any) -> str:
    """An attribute scalar as text (Keras writes both bytes and str)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if hasattr(value, "item") and getattr(value, "shape", None) == ():
        return as_text(value.item())
    return str(value)


def read_string_list(obj: Any, name: str, path: str) -> list[str] | None:
    """A list-of-strings attribute, joined from Keras' ``name0, name1, …`` chunks if split, read
    as ``legacy_h5_format.load_attributes_from_hdf5_group`` reads it: the value is iterated (a
    scalar string gives its characters), bytes entries are decoded as strict UTF-8, and an entry
    that is not text is refused (Keras fails on it looking the name up)."""
    if name in obj.attrs:
        return _text_items(read_attribute(obj, name, path), name, path)
    if f"{name}0" not in obj.attrs:
        return None
    joined: list[str] = []
    chunk = 0
    while f"{name}{chunk}" in obj.attrs and chunk < MAX_ATTRIBUTE_ITEMS:
        joined.extend(_text_items(read_attribute(obj, f"{name}{chunk}", path), name, path))
        chunk += 1
    return joined


def _text_items(value: Any, name: str, path: str) -> list[str]:
    try:
        items = list(value)
    except TypeError:
        raise CorruptFileError(f"{path}: attribute {name!r} is a {type(value).__name__}, "
                               "not a list of names") from None
    texts = []
    for item in items:
        if hasattr(item, "decode"):
            try:
                item = item.decode("utf-8")
            except UnicodeDecodeError:
                raise CorruptFileError(f"{path}: attribute {name!r} holds a name that is not "
                                       "UTF-8, which Keras cannot decode") from None
        if not isinstance(item, str):
            raise CorruptFileError(f"{path}: attribute {name!r} holds a "
                                   f"{type(item).__name__}, not a name")
        texts.append(item)
    return texts
