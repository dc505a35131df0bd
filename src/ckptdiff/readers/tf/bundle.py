"""The tensor bundle behind a tf.train checkpoint prefix: ``PREFIX.index`` plus data shards.

The ``.index`` table maps each tensor key to a ``BundleEntryProto`` (dtype, shape, shard,
offset, size, CRC); the empty key holds the ``BundleHeaderProto``. Partitioned variables keep one
entry with the full shape plus "slices", and one entry per stored slice under an OrderedCode key
starting with a NUL byte; those are folded into their tensor here, as ``tf.train.list_variables``
does. Data shards are only stat-ed, except for reading one small string tensor on request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

from google.protobuf.message import Message

from ckptdiff.dtypes import DTYPE_BITS, TF_DTYPES
from ckptdiff.errors import CorruptFileError
from ckptdiff.readers.base import CountingFile, Location
from ckptdiff.readers.safety import check_lfs_pointer
from ckptdiff.readers.tf.proto.tensor_bundle_pb2 import BundleEntryProto, BundleHeaderProto
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
    if version.min_consumer > BUNDLE_VERSION or BUNDLE_VERSION in version.bad_consumers:
        raise CorruptFileError(
            f"{path}: written for tensor-bundle readers of version >= "
            f"{version.min_consumer}; ckptdiff reads version {BUNDLE_VERSION}")
    if not 0 <= header.num_shards <= MAX_SHARDS:
        raise CorruptFileError(f"{path}: bundle header claims {header.num_shards:,} data shards")
    return header


def _entry(key: str, value: bytes, num_shards: int, path: str) -> BundleEntry:
    proto = parse_proto(BundleEntryProto, value, f"the entry of {key!r}", path)
    dims = tuple(d.size for d in proto.shape.dim)
    if proto.shape.unknown_rank or len(dims) > MAX_RANK or any(d < 0 for d in dims):
        raise CorruptFileError(f"{path}: invalid shape {list(dims)} for {key!r}")
    if proto.dtype <= 0:
        raise CorruptFileError(f"{path}: invalid dtype code {proto.dtype} for {key!r}")
    if proto.offset < 0 or proto.size < 0 or not 0 <= proto.shard_id < max(num_shards, 1):
        raise CorruptFileError(f"{path}: invalid data location for {key!r}")
    entry = BundleEntry(key, proto.dtype, dims, proto.shard_id, proto.offset, proto.size,
                        proto.crc32c)
    bits = DTYPE_BITS.get(entry.dtype)
    numel = 1
    for dim in dims:
        numel *= dim
    if not proto.slices and bits is not None and proto.size != numel * bits // 8:
        raise CorruptFileError(
            f"{path}: entry of {key!r} says {proto.size:,} bytes, but {entry.dtype} "
            f"{list(dims)} needs {numel * bits // 8:,}: corrupt index")
    if not proto.slices and entry.dtype == "string" and proto.size < numel:
        raise CorruptFileError(f"{path}: entry of {key!r} is too small for {numel:,} strings")
    return entry


def slice_owner(raw_key: bytes) -> str | None:
    """The tensor name inside a slice key (OrderedCode: 0, escaped name, dims…), else None."""
    if not raw_key.startswith(b"\x00"):
        return None
    name = bytearray()
    pos = 1
    while pos + 1 < len(raw_key):
        pair = raw_key[pos:pos + 2]
        if pair == b"\x00\x01":
            return name.decode("utf-8", "backslashreplace")
        if pair in (b"\x00\xff", b"\xff\x00"):
            name.append(pair[0])
            pos += 2
        elif raw_key[pos] in (0, 0xFF):
            return None
        else:
            name.append(raw_key[pos])
            pos += 1
    return None


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
        slices: dict[str, list[BundleEntry]] = {}
        for raw_key, value in items:
            key = raw_key.decode("utf-8", "backslashreplace")
            owner = slice_owner(raw_key)
            entry = _entry(key, value, bundle.num_shards, path)
            if owner is None:
                bundle.entries[key] = entry
            else:
                slices.setdefault(owner, []).append(entry)
        bundle.bytes_read = file.bytes_read
        bundle.compressed_blocks = table.compressed_blocks
    for owner, parts in slices.items():
        full = bundle.entries.get(owner)
        if full is None:
            raise CorruptFileError(f"{path}: slices stored for {owner!r}, which has no entry")
        bundle.entries[owner] = BundleEntry(
            full.key, full.dtype_code, full.shape, full.shard_id, full.offset, full.size,
            full.crc32c, tuple(parts))
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
