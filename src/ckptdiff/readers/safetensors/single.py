"""The ``safetensors`` reader: one ``.safetensors`` file, by its header alone.

Also reads a directory that holds exactly one ``*.safetensors`` file and no
``*.safetensors.index.json`` (a typical ``save_pretrained`` folder); a directory with an index, or
with several ``.safetensors`` files, belongs to the ``safetensors-sharded`` reader.

What the manifest says for each tensor, and why:

- ``device`` is ``null``: safetensors stores no device (the loader picks one).
- ``storage`` is the file name (relative); ``storage_offset`` is left out, because torch counts it
  in elements of a shared storage, which safetensors does not have.
- ``aliases`` is empty: the library refuses overlapping data, so no two non-empty tensors can
  share bytes; empty tensors at the same offset share nothing and are not marked as tied.
- ``kind`` is ``buffer`` for the well-known buffer names (``running_mean``…), else ``parameter``;
  ``trainable`` is ``null`` (the format does not say).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ckptdiff.dtypes import SAFETENSORS_DTYPES
from ckptdiff.errors import CkptdiffError, UsageError
from ckptdiff.manifest import Manifest, TensorInfo
from ckptdiff.readers.base import Location
from ckptdiff.readers.safetensors.header import MAX_HEADER_SIZE, SafetensorsHeader, read_header

FILE_SUFFIX = ".safetensors"
INDEX_SUFFIX = ".safetensors.index.json"

# Buffers that models persist in their state dict under these last name components.
_BUFFER_NAMES = frozenset(
    {"running_mean", "running_var", "num_batches_tracked", "position_ids", "inv_freq"}
)


@dataclass(frozen=True)
class DirectoryListing:
    """The safetensors files and index files directly inside a directory (sorted names)."""

    files: tuple[str, ...]
    indexes: tuple[str, ...]


def list_directory(path: Location) -> DirectoryListing:
    """Which ``*.safetensors`` and ``*.safetensors.index.json`` files ``path`` holds."""
    try:
        names = sorted(entry.name for entry in path.iterdir() if entry.is_file())
    except OSError as exc:
        raise CkptdiffError(f"{path}: cannot list the directory: {exc.strerror or exc}") from None
    return DirectoryListing(
        files=tuple(n for n in names if n.lower().endswith(FILE_SUFFIX)),
        indexes=tuple(n for n in names if n.lower().endswith(INDEX_SUFFIX)),
    )


def is_single_file_directory(path: Location) -> bool:
    """True for a directory with exactly one ``.safetensors`` file and no index."""
    try:
        listing = list_directory(path)
    except CkptdiffError:
        return False
    return not listing.indexes and len(listing.files) == 1


def looks_like_header(head: bytes) -> bool:
    """True when ``head`` starts with a plausible header length followed by a JSON object.

    The file size is deliberately not compared: a truncated download should reach the reader and
    get a truncation message rather than "unknown format".
    """
    if len(head) < 9:
        return False
    length = int.from_bytes(head[:8], "little")
    if not 2 <= length <= MAX_HEADER_SIZE:
        return False
    header = head[8 : 8 + length]
    if not header.lstrip(b" \t\r\n").startswith(b"{"):
        return False
    # When the whole header is in view it must also end like a JSON object.
    return len(header) < length or header.rstrip(b" \t\r\n").endswith(b"}")


def tensor_kind(key: str) -> str:
    """``buffer`` for well-known persistent buffer names, else ``parameter``."""
    return "buffer" if key.rsplit(".", 1)[-1] in _BUFFER_NAMES else "parameter"


def tensor_infos(header: SafetensorsHeader, storage: str) -> list[TensorInfo]:
    """The manifest entries of one validated header, in data-offset order."""
    return [
        TensorInfo(
            key=entry.key,
            shape=entry.shape,
            dtype=SAFETENSORS_DTYPES.get(entry.dtype_code, "other"),
            device=None,
            nbytes=entry.end - entry.begin,
            storage=storage,
            aliases=(),
            kind=tensor_kind(entry.key),
            trainable=None,
        )
        for entry in header.entries
    ]


def other_dtype_codes(header: SafetensorsHeader) -> dict[str, str]:
    """The safetensors dtype code of each tensor whose dtype is outside ckptdiff's vocabulary
    (``F6_E2M3``, ``F8_E8M0`` …): the manifest says ``other``, and a loader needs the code."""
    return {e.key: e.dtype_code for e in header.entries if e.dtype_code not in SAFETENSORS_DTYPES}


def refuse_key(path: Location, key: str | None) -> None:
    """safetensors has no containers to pick from: a ``key`` is a usage error."""
    if key is not None:
        raise UsageError(
            f"{path}: --key {key!r} does not apply: a safetensors checkpoint is one flat set "
            "of tensors, with no container to pick"
        )


class SafetensorsReader:
    """A single safetensors file (any extension), or a folder holding exactly one."""

    name: ClassVar[str] = "safetensors"
    extensions: ClassVar[tuple[str, ...]] = (FILE_SUFFIX,)
    description: ClassVar[str] = "safetensors file (header only)"
    requires: ClassVar[tuple[str, ...]] = ()
    extra: ClassVar[str | None] = None

    def sniff(self, head: bytes, path: Location) -> bool:
        """A plausible header length then ``{``; or a folder with one file and no index."""
        if not head:
            return path.is_dir() and is_single_file_directory(path)
        return looks_like_header(head)

    def read(self, path: Location, key: str | None = None) -> Manifest:
        """Validate the header and describe every tensor; reads ``8 + N`` bytes."""
        refuse_key(path, key)
        try:
            return self._read(path)
        except OSError as exc:  # e.g. a folder we may not list, an I/O error mid-read
            raise CkptdiffError(f"{path}: cannot read: {exc.strerror or exc}") from None

    def _read(self, path: Location) -> Manifest:
        file = path
        if path.is_dir():
            listing = list_directory(path)
            if listing.indexes or len(listing.files) != 1:
                raise CkptdiffError(
                    f"{path}: expected a folder with exactly one {FILE_SUFFIX} file and no "
                    f"index, found {len(listing.files)} files and {len(listing.indexes)} indexes"
                )
            file = path / listing.files[0]
        header = read_header(file)
        metadata: dict[str, object] = {"safetensors": header.metadata}
        codes = other_dtype_codes(header)
        if codes:
            metadata["dtype_codes"] = codes
        metadata["bytes_read"] = header.bytes_read
        return Manifest(
            path=str(path),
            format=self.name,
            tensors=tuple(tensor_infos(header, file.name)),
            metadata=metadata,
        )
