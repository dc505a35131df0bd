"""Hand-built tensor bundles: header and entry rules, big-endian bundles, limits, odd dtypes."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.test_tf_table import build_table, varint

import ckptdiff.readers as registry
from ckptdiff.errors import CorruptFileError
from ckptdiff.readers.tf.crc32c import crc32c, mask
from ckptdiff.readers.tf.proto.tensor_bundle_pb2 import BundleEntryProto, BundleHeaderProto
from ckptdiff.readers.tf.proto.trackable_object_graph_pb2 import TrackableObjectGraph

GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"


def string_scalar(value: bytes, big_endian: bool = False) -> tuple[bytes, int]:
    """A scalar string tensor as TensorFlow stores it, and its masked entry checksum."""
    order = "big" if big_endian else "little"
    length = len(value).to_bytes(4, order)
    length_crc = mask(crc32c(length)).to_bytes(4, order)
    crc = crc32c(value, crc32c(length_crc, crc32c(length)))
    return varint(len(value)) + length_crc + value, mask(crc)


def entry(dtype: int, shape: list[int], size: int, offset: int = 0, shard: int = 0,
          crc: int = 0) -> BundleEntryProto:
    proto = BundleEntryProto(dtype=dtype, shard_id=shard, offset=offset, size=size, crc32c=crc)
    for dim in shape:
        proto.shape.dim.add(size=dim)
    return proto


def sliced(proto: BundleEntryProto, extents: list[tuple[int, int]]) -> BundleEntryProto:
    """``proto`` partitioned along its first dimension into ``extents`` (start, length)."""
    for start, length in extents:
        proto.slices.add().extent.add(start=start, length=length)
    return proto


def write_bundle(prefix: Path, entries: dict[str, BundleEntryProto], shards: int = 1,
                 big_endian: bool = False, min_consumer: int = 0,
                 data: bytes = b"\x00" * 4096) -> Path:
    """Write ``prefix.index`` and ``shards`` data files (each holding ``data``)."""
    header = BundleHeaderProto(num_shards=shards, endianness=1 if big_endian else 0)
    header.version.producer = 1
    header.version.min_consumer = min_consumer
    items = [(b"", header.SerializeToString())]
    items += sorted((key.encode("utf-8", "surrogateescape"), e.SerializeToString())
                    for key, e in entries.items())
    prefix.with_name(prefix.name + ".index").write_bytes(build_table([items]))
    for shard in range(min(shards, 8)):  # (a header claiming thousands gets a few files)
        prefix.with_name(f"{prefix.name}.data-{shard:05d}-of-{shards:05d}").write_bytes(data)
    return prefix


def tf2_bundle(prefix: Path, big_endian: bool) -> Path:
    graph = TrackableObjectGraph()
    root = graph.nodes.add()
    root.children.add(node_id=1, local_name="layer" * 30)  # a graph of more than 127 bytes
    graph.nodes.add().attributes.add(name="VARIABLE_VALUE", full_name="dense/kernel",
                                     checkpoint_key="layer" * 30 + "/.ATTRIBUTES/VARIABLE_VALUE")
    stored, crc = string_scalar(graph.SerializeToString(), big_endian)
    entries = {GRAPH_KEY: entry(7, [], len(stored), offset=8, crc=crc),
               "layer" * 30 + "/.ATTRIBUTES/VARIABLE_VALUE": entry(1, [2, 2], 16, offset=0)}
    return write_bundle(prefix, entries, big_endian=big_endian, data=bytes(8) + stored)


@pytest.mark.parametrize("big_endian", [False, True])
def test_hand_built_tf2_bundle(tmp_path: Path, big_endian: bool) -> None:
    manifest = registry.read(tf2_bundle(tmp_path / "ckpt-1", big_endian))
    assert manifest.metadata["endianness"] == ("big" if big_endian else "little")
    (tensor,) = manifest.tensors
    assert (tensor.key, tensor.variable_name, tensor.nbytes) == ("layer" * 30, "dense/kernel", 16)


def test_object_graph_checksum_must_match(tmp_path: Path) -> None:
    prefix = tf2_bundle(tmp_path / "ckpt-1", False)
    shard = prefix.with_name("ckpt-1.data-00000-of-00001")
    data = bytearray(shard.read_bytes())
    data[-1] ^= 0x20
    shard.write_bytes(bytes(data))
    with pytest.raises(CorruptFileError, match="checksum mismatch in '_CHECKPOINTABLE_OBJECT"):
        registry.read(prefix)


@pytest.mark.parametrize(("entries", "options", "message"), [
    ({}, {"min_consumer": 2}, "tensor-bundle readers of version >= 2"),
    ({}, {"shards": 100_000}, "claims 100,000 data shards"),
    ({"w": entry(0, [2], 8)}, {}, "dtype code 0 for 'w' is not one TensorFlow can read"),
    ({"w": entry(200, [3], 7)}, {}, "dtype code 200 for 'w' is not one"),
    ({"w": entry(20, [], 12)}, {}, "dtype code 20 for 'w' is not one"),  # a resource
    ({"w": entry(101, [2], 8)}, {}, "dtype code 101 for 'w' is not one"),  # float32_ref
    ({"w": entry(11, [3], 4)}, {}, r"but other \[3\] needs 3"),  # qint8, one byte each
    ({"w": entry(1, [-1], 8)}, {}, "invalid shape"),
    ({"w": entry(1, [3], 8)}, {}, "needs 12"),
    ({"w": entry(1, [2], 8, shard=1)}, {}, "invalid data location"),
    ({"w": entry(1, [2], 8, offset=-4)}, {}, "invalid data location"),
    ({"w": entry(7, [5], 3)}, {}, "too small for 5 strings"),
    ({"w": entry(1, [1 << 20], 1 << 22)}, {}, "is 4,096 bytes but the index needs 4,194,304"),
    ({GRAPH_KEY: entry(7, [2], 4)}, {}, "not a scalar string tensor"),
    ({"w": sliced(entry(1, [2], 0), [(0, 1), (1, 1)])}, {}, r"slice \[\(0, 1\)\] is not stored"),
    ({"w": sliced(entry(1, [2], 0), [(0, 2), (1, 1)])}, {}, "two slices overlap"),
    ({"w": sliced(entry(1, [2], 0), [(0, 1)])}, {}, "its slices do not cover it"),
    ({"w": sliced(entry(1, [], 0), [(0, 1)])}, {}, "a slice of rank 1 for a shape of rank 0"),
    ({"w\udcff": entry(1, [1], 4)}, {}, "is not UTF-8; TensorFlow cannot list it"),
])
def test_entry_rules(tmp_path: Path, entries: dict[str, BundleEntryProto],
                     options: dict[str, int], message: str) -> None:
    prefix = write_bundle(tmp_path / "ckpt", entries, **options)  # type: ignore[arg-type]
    with pytest.raises(CorruptFileError, match=message):
        registry.read(prefix)


def test_header_only_bundle_and_unknown_dtypes(tmp_path: Path) -> None:
    assert len(registry.read(write_bundle(tmp_path / "empty", {}))) == 0
    # Dtypes TensorFlow reads that the vocabulary has no name for, sized as TensorFlow sizes them
    # (a variant by its own encoding); resource, reference and unknown codes are refused above.
    odd = {"variant": entry(21, [], 12), "q": entry(11, [4], 4), "f8": entry(26, [3], 3)}
    manifest = registry.read(write_bundle(tmp_path / "odd", odd))
    assert {t.key: (t.dtype, t.nbytes) for t in manifest} == {
        "variant": ("other", 12), "f8": ("other", 3), "q": ("other", 4)}


def test_partitioned_tensor_from_its_slices(tmp_path: Path) -> None:
    from ckptdiff.readers.tf.slices import slice_key

    full = sliced(entry(1, [3], 0), [(0, 1), (1, 2)])
    parts = {slice_key(b"w", ((0, 1),)): entry(1, [1], 4), slice_key(b"w", ((1, 2),)): entry(
        1, [2], 8, offset=4)}
    prefix = write_bundle(tmp_path / "ckpt", {"w": full})
    index = prefix.with_name("ckpt.index")
    header = BundleHeaderProto(num_shards=1)
    items = sorted([(b"", header.SerializeToString()), (b"w", full.SerializeToString())] + [
        (key, e.SerializeToString()) for key, e in parts.items()])
    index.write_bytes(build_table([items]))
    (tensor,) = registry.read(prefix).tensors
    assert (tensor.key, tensor.shape, tensor.nbytes) == ("w", (3,), 12)


def test_object_graph_size_limit(tmp_path: Path) -> None:
    size = 65 * 1024 * 1024
    prefix = write_bundle(tmp_path / "big", {GRAPH_KEY: entry(7, [], size)})
    with open(prefix.with_name("big.data-00000-of-00001"), "r+b") as shard:
        shard.truncate(size)  # sparse: nothing is written
    with pytest.raises(CorruptFileError, match="over ckptdiff's limit"):
        registry.read(prefix)


def test_object_graph_referring_to_missing_nodes(tmp_path: Path) -> None:
    graph = TrackableObjectGraph()
    graph.nodes.add().children.add(node_id=5, local_name="ghost")
    stored, crc = string_scalar(graph.SerializeToString())
    prefix = write_bundle(tmp_path / "g", {GRAPH_KEY: entry(7, [], len(stored), crc=crc)},
                          data=stored)
    with pytest.raises(CorruptFileError, match="refers to a node it does not have"):
        registry.read(prefix)
