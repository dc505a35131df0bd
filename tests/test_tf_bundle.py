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


def write_bundle(prefix: Path, entries: dict[str, BundleEntryProto], shards: int = 1,
                 big_endian: bool = False, min_consumer: int = 0,
                 data: bytes = b"\x00" * 4096) -> Path:
    """Write ``prefix.index`` and ``shards`` data files (each holding ``data``)."""
    header = BundleHeaderProto(num_shards=shards, endianness=1 if big_endian else 0)
    header.version.producer = 1
    header.version.min_consumer = min_consumer
    items = [(b"", header.SerializeToString())]
    items += sorted((key.encode(), e.SerializeToString()) for key, e in entries.items())
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
    ({"w": entry(0, [2], 8)}, {}, "invalid dtype code 0"),
    ({"w": entry(1, [-1], 8)}, {}, "invalid shape"),
    ({"w": entry(1, [3], 8)}, {}, "needs 12"),
    ({"w": entry(1, [2], 8, shard=1)}, {}, "invalid data location"),
    ({"w": entry(1, [2], 8, offset=-4)}, {}, "invalid data location"),
    ({"w": entry(7, [5], 3)}, {}, "too small for 5 strings"),
    ({"w": entry(1, [1 << 20], 1 << 22)}, {}, "is 4,096 bytes but the index needs 4,194,304"),
    ({GRAPH_KEY: entry(7, [2], 4)}, {}, "not a scalar string tensor"),
    ({"\x00w\x00\x01\x01\x01\x80\x81": entry(1, [1], 4)}, {}, "slices stored for 'w'"),
])
def test_entry_rules(tmp_path: Path, entries: dict[str, BundleEntryProto],
                     options: dict[str, int], message: str) -> None:
    prefix = write_bundle(tmp_path / "ckpt", entries, **options)  # type: ignore[arg-type]
    with pytest.raises(CorruptFileError, match=message):
        registry.read(prefix)


def test_header_only_bundle_and_unknown_dtypes(tmp_path: Path) -> None:
    assert len(registry.read(write_bundle(tmp_path / "empty", {}))) == 0
    odd = {"resource": entry(20, [], 12), "future": entry(200, [3], 7), "q": entry(11, [4], 4)}
    manifest = registry.read(write_bundle(tmp_path / "odd", odd))
    assert {t.key: (t.dtype, t.nbytes) for t in manifest} == {
        "resource": ("other", 12), "future": ("other", 7), "q": ("other", 4)}


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
