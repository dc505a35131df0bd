"""The tensor bundle behind a tf.train checkpoint prefix: ``PREFIX.index`` plus data shards.

The ``.index`` table maps each tensor key to a ``BundleEntryProto`` (dtype, shape, shard,
offset, size, CRC); the empty key holds the ``BundleHeaderProto``. Partitioned variables keep one
entry with the full shape plus "slices", and one entry per stored slice under the OrderedCode key
its slice list names (slices.py); those are folded into their tensor here, as
``tf.train.list_variables`` does. Entries are checked as TensorFlow's reader checks them. Data
shards are only stat-ed, except for reading one small string tensor on request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

from google.protobuf.message import Message

from ckptdiff.dtypes import TF_DTYPES
from ckptdiff.errors import CorruptFileError
from ckptdiff.readers.base import CountingFile, Location
from ckptdiff.readers.safety import check_lfs_pointer
from ckptdiff.readers.tf.proto.tensor_bundle_pb2 import BundleEntryProto, BundleHeaderProto
from ckptdiff.readers.tf.slices import Extents, check_slices, extents, is_full, slice_key
from ckptdiff.readers.tf.sstable import TableReader

BUNDLE_VERSION = 1  # TensorFlow's kTensorBundleVersion: the newest min_consumer we understand
MAX_SHARDS = 99_999  # shard numbers are written with five digits
MAX_RANK = 254  # TensorFlow's TensorShape limit
DT_STRING = 7

M = TypeVar("M", bound=Message)


def parse_proto(message: type[M], data: bytes, what: str, path: str) -> M:
    """Parse ``data`` as ``message``; any failure is a one-line ``CorruptFileError``."""
    try:
        parsed: M = message.FromString(data)
    except Exception as exc:  # protobuf raises DecodeError, or RuntimeError from upb
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise CorruptFileError(f"{path}: cannot parse {what}: {reason}") from None
    return parsed


@dataclass(frozen=True)
class BundleEntry:
    """One tensor's record: stored dtype code, shape, and where its bytes are."""

    key: str
    dtype_code: int
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    crc32c: int
    slices: tuple[BundleEntry, ...] = ()

    @property
    def dtype(self) -> str:
        """The vocabulary name of the stored dtype (``other`` for resource, variant, …)."""
        return TF_DTYPES.get(self.dtype_code, "other")

    @property
    def nbytes(self) -> int:
        """Bytes stored for this tensor (all slices together for a partitioned one)."""
        return sum(s.size for s in self.slices) if self.slices else self.size


@dataclass
class Bundle:
    """Everything the ``.index`` of one checkpoint prefix says."""

    prefix: Location
    num_shards: int
    big_endian: bool
    entries: dict[str, BundleEntry] = field(default_factory=dict)
    bytes_read: int = 0
    compressed_blocks: int = 0

    def shard_path(self, shard_id: int) -> Location:
        """The data file holding shard ``shard_id``."""
        return self.prefix.with_name(
            f"{self.prefix.name}.data-{shard_id:05d}-of-{self.num_shards:05d}")


def _check_header(value: bytes, path: str) -> BundleHeaderProto:
    header = parse_proto(BundleHeaderProto, value, "the bundle header", path)
    version = header.version
    if version.producer < 0:  # TensorFlow's kTensorBundleMinProducer is 0
        raise CorruptFileError(f"{path}: bundle written by producer version {version.producer}, "
                               "below the 0 TensorFlow reads")
    if version.min_consumer > BUNDLE_VERSION or BUNDLE_VERSION in version.bad_consumers:
        raise CorruptFileError(
            f"{path}: written for tensor-bundle readers of version >= "
            f"{version.min_consumer}; ckptdiff reads version {BUNDLE_VERSION}")
    if not 0 <= header.num_shards <= MAX_SHARDS:
        raise CorruptFileError(f"{path}: bundle header claims {header.num_shards:,} data shards")
    return header


# TensorFlow's DataTypeSize of every dtype code it can read a tensor of (types.proto), by
# which it checks an entry's size; strings (7) and variants (21) are sized by their own
# encoding. Others are refused: 0 and unknown codes (the reader's dtype map raises), resource
# handles (20) and reference types (101+), on which its reader aborts the process.
TF_ELEMENT_BYTES = {1: 4, 2: 8, 3: 4, 4: 1, 5: 2, 6: 1, 8: 8, 9: 8, 10: 1, 11: 1, 12: 1, 13: 4,
                    14: 2, 15: 2, 16: 2, 17: 2, 18: 16, 19: 2, 22: 4, 23: 8} | dict.fromkeys(
                        range(24, 34), 1)
DT_VARIANT = 21
INT64_MAX = 2**63 - 1


def _valid_shape(dims: tuple[int, ...]) -> bool:
    """TensorShape::IsValid: no negative dim, and no overflow of the running element count
    (taken in order, so a 0 dim stops the count growing)."""
    count = 1
    for dim in dims:
        if dim < 0:
            return False
        count *= dim
        if count > INT64_MAX:
            return False
    return len(dims) <= MAX_RANK


def _entry(key: str, proto: BundleEntryProto, num_shards: int, path: str) -> BundleEntry:
    dims = tuple(d.size for d in proto.shape.dim)
    if proto.shape.unknown_rank:
        raise CorruptFileError(
            f"{path}: the shape of {key!r} says its rank is unknown but lists {list(dims)}: "
            "ambiguous")
    if not _valid_shape(dims):
        raise CorruptFileError(f"{path}: invalid shape {list(dims)} for {key!r}")
    if proto.dtype not in TF_ELEMENT_BYTES and proto.dtype not in (DT_STRING, DT_VARIANT):
        raise CorruptFileError(
            f"{path}: dtype code {proto.dtype} for {key!r} is not one TensorFlow can read")
    if proto.offset < 0 or proto.size < 0 or not 0 <= proto.shard_id < max(num_shards, 1):
        raise CorruptFileError(f"{path}: invalid data location for {key!r}")
    entry = BundleEntry(key, proto.dtype, dims, proto.shard_id, proto.offset, proto.size,
                        proto.crc32c)
    element = TF_ELEMENT_BYTES.get(proto.dtype)
    numel = 1
    for dim in dims:
        numel *= dim
    sliced = bool(proto.slices) and not (len(proto.slices) == 1 and is_full(
        extents(proto.slices[0])))  # a single full slice is read from this entry itself
    if not sliced and element is not None and proto.size != numel * element:
        raise CorruptFileError(
            f"{path}: entry of {key!r} says {proto.size:,} bytes, but {entry.dtype} "
            f"{list(dims)} needs {numel * element:,}: corrupt index")
    if not sliced and entry.dtype == "string" and proto.size < numel:
        raise CorruptFileError(f"{path}: entry of {key!r} is too small for {numel:,} strings")
    return entry


def _tensor_key(raw_key: bytes, path: str) -> str:
    try:
        return raw_key.decode("utf-8")
    except UnicodeDecodeError:
        # TensorFlow's Python reader decodes every variable name and fails on this one.
        raise CorruptFileError(
            f"{path}: tensor key {raw_key!r} is not UTF-8; TensorFlow cannot list it") from None


def read_bundle(index_path: Location, prefix: Location, path: str) -> Bundle:
    """Parse ``index_path`` (the ``.index`` of ``prefix``); ``path`` names it in errors."""
    try:
        file = CountingFile(index_path)
    except OSError as exc:
        raise CorruptFileError(f"{path}: cannot open {index_path.name}: {exc.strerror}") from None
    with file:
        table = TableReader(file, path)
        items = iter(table.entries())
        first = next(items, None)
        if first is None or first[0] != b"":
            raise CorruptFileError(f"{path}: the index has no bundle header entry: corrupt")
        header = _check_header(first[1], path)
        bundle = Bundle(prefix, header.num_shards, header.endianness == BundleHeaderProto.BIG)
        protos = [(raw_key, parse_proto(BundleEntryProto, value, f"the entry of {raw_key!r}",
                                        path)) for raw_key, value in items]
        bundle.bytes_read = file.bytes_read
        bundle.compressed_blocks = table.compressed_blocks
    # The keys TensorFlow hides as slices: exactly those its entries' slice lists name.
    slice_keys = {slice_key(raw_key, extents(s)): (raw_key, extents(s))
                  for raw_key, proto in protos for s in proto.slices}
    stored: dict[bytes, dict[Extents, BundleEntryProto]] = {}
    for raw_key, proto in protos:
        if raw_key in slice_keys:
            owner, part = slice_keys[raw_key]
            stored.setdefault(owner, {})[part] = proto
    for raw_key, proto in protos:
        if raw_key in slice_keys:
            continue
        key = _tensor_key(raw_key, path)
        entry = _entry(key, proto, bundle.num_shards, path)
        parts = [extents(s) for s in proto.slices]
        if parts:
            check_slices(key, entry.shape, entry.dtype_code, parts, stored.get(raw_key, {}), path)
            names = {p: slice_key(raw_key, p).decode("utf-8", "backslashreplace") for p in parts}
            entry = BundleEntry(key, entry.dtype_code, entry.shape, entry.shard_id, entry.offset,
                                entry.size, entry.crc32c, tuple(
                                    _entry(names[p], stored[raw_key][p], bundle.num_shards, path)
                                    for p in parts if not is_full(p)))
        bundle.entries[key] = entry
    return bundle


def check_shards(bundle: Bundle, path: str) -> dict[int, str]:
    """Stat every referenced data shard: it must exist and hold each entry's byte range.

    Returns shard id -> file name. Entries of partitioned tensors are checked slice by slice.
    """
    needed: dict[int, int] = {}
    for entry in bundle.entries.values():
        for part in entry.slices or (entry,):
            needed[part.shard_id] = max(needed.get(part.shard_id, 0), part.offset + part.size)
    names: dict[int, str] = {}
    for shard_id in sorted(needed):
        shard = bundle.shard_path(shard_id)
        try:
            size = shard.stat().st_size if shard.is_file() else None
        except OSError:
            size = None
        if size is None:
            raise CorruptFileError(
                f"{path}: data shard {shard.name} is missing (shard {shard_id} of "
                f"{bundle.num_shards}); the index refers to it")
        if size < needed[shard_id]:
            check_lfs_pointer(shard, path, shard.name)
            raise CorruptFileError(
                f"{path}: data shard {shard.name} is {size:,} bytes but the index needs "
                f"{needed[shard_id]:,}: truncated copy?")
        names[shard_id] = shard.name
    return names
