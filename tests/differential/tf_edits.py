"""Structure-aware edits of a tf.train checkpoint (an ``.index`` table plus data shards).

Bundle-layer edits change the ``BundleHeaderProto`` (shards, endianness, versions), one
``BundleEntryProto`` (dtype, shape, shard, offset, size, CRC, slices), the keys (renamed,
duplicated, dropped, reordered, empty, NUL or non-UTF-8 bytes, shared prefixes) or the raw proto
bytes, and write a valid table again (tests/differential/tf_table.py) so that the edit reaches
the bundle reader. Table-layer edits lay the same entries out differently (small blocks, restart
intervals, Snappy, short or wrong index separators) or break one structure after writing (block
trailer, restart array, shared-prefix count, footer handles, magic, truncation). Shard edits
truncate, extend, drop, add or rename data files, or flip a data byte; object-graph edits rewrite
the TF2 ``_CHECKPOINTABLE_OBJECT_GRAPH`` tensor (appended to its shard, with its checksums).
"""

from __future__ import annotations

import random
import struct

from tests.differential import tf_table
from tests.differential.tf_table import Layout

from ckptdiff.readers.tf.crc32c import crc32c, mask
from ckptdiff.readers.tf.proto.tensor_bundle_pb2 import BundleEntryProto, BundleHeaderProto
from ckptdiff.readers.tf.proto.trackable_object_graph_pb2 import TrackableObjectGraph

Files = tuple[tuple[str, bytes], ...]
GRAPH_KEY = b"_CHECKPOINTABLE_OBJECT_GRAPH"
_DTYPES = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23,
           24, 25, 26, 27, 28, 29, 30, 31, 101, 107, 114, 119, 200, -1]
_DIMS = [0, 1, 2, 3, -1, 6, 2**31, 2**62]


class Checkpoint:
    """The files of one checkpoint: its prefix, index entries and data shards by name."""

    def __init__(self, files: Files) -> None:
        self.files = dict(files)
        index = next(n for n in self.files if n.endswith(".index"))
        self.prefix = index.removesuffix(".index")
        self.entries = tf_table.read_table(self.files.pop(index))

    def tensor_keys(self) -> list[bytes]:
        return [key for key, _ in self.entries if key]

    def shard(self, shard_id: int) -> str:
        return next(n for n in sorted(self.files) if f".data-{shard_id:05d}-" in n)

    def done(self, table: bytes | None = None, layout: Layout | None = None) -> Files:
        index = table if table is not None else tf_table.write_table(self.entries, layout)
        return tuple(sorted({**self.files, f"{self.prefix}.index": index}.items()))


def _edit_header(ckpt: Checkpoint, rng: random.Random) -> str:
    header = BundleHeaderProto.FromString(ckpt.entries[0][1])
    choice = rng.randrange(4)
    if choice == 0:
        header.num_shards = rng.choice([0, 1, 2, 3, -1, 99_999, 100_000, 2**31 - 1])
    elif choice == 1:
        header.endianness = BundleHeaderProto.BIG
    elif choice == 2:
        header.version.producer = rng.choice([-1, 0, 2, 1 << 20])
        header.version.min_consumer = rng.choice([-1, 0, 0, 1, 2])
    else:
        header.version.bad_consumers.append(rng.choice([0, 1, 2]))
    ckpt.entries[0] = (b"", header.SerializeToString())
    return f"header:{str(header).strip()!r}"


def _edit_entry(ckpt: Checkpoint, key: bytes, rng: random.Random) -> str:
    position = next(i for i, (k, _) in enumerate(ckpt.entries) if k == key)
    entry = BundleEntryProto.FromString(ckpt.entries[position][1])
    choice = rng.randrange(9)
    if choice == 0:
        entry.dtype = rng.choice(_DTYPES)
    elif choice == 1:
        dims = entry.shape.dim
        if dims and rng.random() < 0.5:
            dims[rng.randrange(len(dims))].size = rng.choice(_DIMS)
        elif dims and rng.random() < 0.5:
            del dims[rng.randrange(len(dims))]
        else:
            dims.add(size=rng.choice([0, 1, 2]), name=rng.choice(["", "x"]))
    elif choice == 2:
        entry.shape.unknown_rank = True
    elif choice == 3:
        entry.shard_id = rng.choice([1, 2, -1, 5])
    elif choice == 4:
        entry.offset = rng.choice([entry.offset + 1, entry.offset - 1, entry.offset + 4,
                                   len(ckpt.files[ckpt.shard(0)]), 2**40, -1, 0])
    elif choice == 5:
        entry.size = rng.choice([entry.size + 1, entry.size - 1, 0, entry.size * 2, 2**40, -1])
    elif choice == 6:
        entry.crc32c ^= 1 << rng.randrange(32)
    elif choice == 7:
        extent = entry.slices.add().extent
        for dim in entry.shape.dim or [None]:
            if rng.random() < 0.7 and dim is not None:
                extent.add(start=0, length=dim.size)
            else:
                extent.add()
    else:  # same dtype size, another meaning (float32 <-> int32 <-> uint32 …)
        entry.dtype = {1: 3, 3: 22, 9: 2, 2: 23, 19: 14, 14: 17, 10: 4, 7: 21}.get(entry.dtype, 1)
    ckpt.entries[position] = (key, entry.SerializeToString())
    return f"entry:{key!r}:{str(entry).strip()[:160]!r}"


def _edit_keys(ckpt: Checkpoint, key: bytes, rng: random.Random) -> str:
    position = next(i for i, (k, _) in enumerate(ckpt.entries) if k == key)
    others = [k for k in ckpt.tensor_keys() if k != key] or [key]
    choice = rng.randrange(8)  # 5-7: a raw value edit, which mostly aborts TensorFlow (slow)
    if choice == 0:
        new = rng.choice([b"", rng.choice(others), key + b"\0", key + b"\xff", key[:-1],
                          key + b"/x", b"\xc3" + key, b"\0" + key, key.upper(), key + b"\x00\x01",
                          key.replace(b"/", b"//"), rng.choice(others) + b"/" + key])
        ckpt.entries[position] = (new, ckpt.entries[position][1])
        ckpt.entries.sort(key=lambda item: item[0])
        return f"rename:{key!r}->{new!r}"
    if choice == 1:
        del ckpt.entries[position]
        return f"drop:{key!r}"
    if choice == 2:  # the same key twice, with the value of another entry first or second
        value = dict(ckpt.entries)[rng.choice(others)]
        ckpt.entries.insert(position + rng.randrange(2), (key, value))
        return f"duplicate:{key!r}"
    if choice == 3 and len(ckpt.entries) > 2:
        a, b = rng.sample(range(len(ckpt.entries)), 2)
        ckpt.entries[a], ckpt.entries[b] = ckpt.entries[b], ckpt.entries[a]
        return f"swap:{a},{b}"
    if choice == 4:
        header = ckpt.entries.pop(0)
        if rng.random() < 0.5:
            ckpt.entries.insert(rng.randrange(1, len(ckpt.entries) + 1), header)
        return "header-moved"
    if choice < 7:
        return _edit_keys(ckpt, key, rng)
    value = ckpt.entries[position][1]
    value = rng.choice([value + b"\xf8\x01\x01", value[:-1], value + b"\x08\x03",
                        value + b"\x18\x01", b"\xff\xff", b"", value + b"\x12\x00"])
    ckpt.entries[position] = (key, value)
    return f"raw-value:{key!r}={value[-4:]!r}"


def _edit_graph(ckpt: Checkpoint, rng: random.Random) -> str:
    position = next(i for i, (k, _) in enumerate(ckpt.entries) if k == GRAPH_KEY)
    entry = BundleEntryProto.FromString(ckpt.entries[position][1])
    shard = ckpt.shard(entry.shard_id)
    data = ckpt.files[shard]
    raw = data[entry.offset:entry.offset + entry.size]
    length, pos = tf_table._read_varint(raw, 0)
    graph = TrackableObjectGraph.FromString(raw[pos + 4:pos + 4 + length])
    nodes = graph.nodes
    node = nodes[rng.randrange(len(nodes))]
    keys = [k.decode("utf-8", "replace") for k in ckpt.tensor_keys() if k != GRAPH_KEY]
    choice = rng.randrange(6)
    if choice == 0 and node.children:
        child = node.children[rng.randrange(len(node.children))]
        child.local_name = rng.choice(["", "a/b", "a.b", "optimizer", "0",
                                       node.children[0].local_name])
    elif choice == 1 and node.children:
        node.children[rng.randrange(len(node.children))].node_id = rng.choice(
            [0, len(nodes) - 1, len(nodes), rng.randrange(len(nodes))])
    elif choice == 2 and node.attributes:
        attribute = node.attributes[rng.randrange(len(node.attributes))]
        attribute.checkpoint_key = rng.choice([*keys, "missing/.ATTRIBUTES/VARIABLE_VALUE", ""])
    elif choice == 3 and node.attributes:
        node.attributes[0].name = rng.choice(["OTHER", "", "VARIABLE_VALUE"])
    elif choice == 4:
        node.slot_variables.add(original_variable_node_id=rng.randrange(len(nodes) + 1),
                                slot_name="m", slot_variable_node_id=rng.randrange(len(nodes)))
    else:
        del nodes[-1]
    encoded, crc = tf_table.string_scalar(graph.SerializeToString())
    entry.offset, entry.size, entry.crc32c = len(data), len(encoded), crc
    ckpt.files[shard] = data + encoded
    ckpt.entries[position] = (GRAPH_KEY, entry.SerializeToString())
    return f"graph:{choice}"


def _edit_shards(ckpt: Checkpoint, rng: random.Random) -> str:
    name = rng.choice(sorted(ckpt.files))
    data = ckpt.files[name]
    choice = rng.randrange(6)
    if choice == 0:
        ckpt.files[name] = data[:rng.choice([0, max(len(data) - 1, 0), len(data) // 2])]
    elif choice == 1:
        ckpt.files[name] = data + b"\0" * rng.choice([1, 8])
    elif choice == 2:
        del ckpt.files[name]
    elif choice == 3:
        ckpt.files[f"{ckpt.prefix}.data-00001-of-00002"] = data
    elif choice == 4:
        ckpt.files[name.replace("-of-00001", "-of-00002")] = ckpt.files.pop(name)
    elif data:  # a data byte: only a reader of the tensor's bytes can see it
        at = rng.randrange(len(data))
        ckpt.files[name] = data[:at] + bytes([data[at] ^ 0x10]) + data[at + 1:]
    return f"shard:{choice}:{name}"


def _layout(rng: random.Random) -> Layout:
    return Layout(block_size=rng.choice([1, 40, 200, 4096]),
                  restart_interval=rng.choice([1, 2, 3, 16]), snappy=rng.random() < 0.3,
                  separator=rng.choice(["last", "last", "short", "first"]))


def _break_table(table: bytes, rng: random.Random) -> tuple[str, bytes]:
    """One edit of the written table's own structures (the CRC fixed where it says so)."""
    choice = rng.randrange(7)
    footer = len(table) - tf_table.FOOTER_SIZE
    if choice == 0:
        return "truncated", table[:rng.randrange(len(table))]
    if choice == 1:
        return "appended", table + rng.choice([b"\0", table[-48:]])
    if choice == 2:  # a footer byte (handles, padding, magic)
        at = footer + rng.randrange(tf_table.FOOTER_SIZE)
        return f"footer@{at - footer}", table[:at] + bytes([table[at] ^ 1]) + table[at + 1:]
    # the one data block (written with a large block size), which the metaindex block follows
    first_size = tf_table._read_varint(table, footer)[0] - 5
    block = bytearray(table[:first_size])
    kind = table[first_size]
    if choice == 3:
        kind = rng.choice([1, 2, 0x81])
    elif choice == 4 and len(block) >= 4:
        struct.pack_into("<I", block, len(block) - 4, rng.choice([0, 2, 1000, 2**32 - 1]))
    elif choice == 5:
        block[0] = rng.choice([1, 5, 0x80])  # the first entry's shared-prefix count
    else:
        block[rng.randrange(len(block))] ^= 0x04
    trailer = bytes([kind])
    crc = struct.pack("<I", mask(crc32c(bytes(block) + trailer)))
    if rng.random() < 0.2:
        crc = table[first_size + 1:first_size + 5]
    return f"block:{choice}:kind={kind}", bytes(block) + trailer + crc + table[first_size + 5:]


def mutate(files: Files, rng: random.Random) -> tuple[str, Files]:
    """One edit of the checkpoint ``files`` (see the module docstring)."""
    ckpt = Checkpoint(files)
    key = rng.choice(ckpt.tensor_keys())
    choice = rng.randrange(100)
    if choice < 12:
        what = _edit_header(ckpt, rng)
    elif choice < 40:
        what = _edit_entry(ckpt, key, rng)
    elif choice < 55:
        what = _edit_keys(ckpt, key, rng)
    elif choice < 65 and GRAPH_KEY in ckpt.tensor_keys():
        what = _edit_graph(ckpt, rng)
    elif choice < 75:
        what = _edit_shards(ckpt, rng)
    elif choice < 88:
        layout = _layout(rng)
        return f"layout:{layout}", ckpt.done(layout=layout)
    else:
        edit, table = _break_table(tf_table.write_table(ckpt.entries, Layout(block_size=4096)),
                                   rng)
        return f"table:{edit}", ckpt.done(table)
    return what, ckpt.done(layout=_layout(rng) if rng.random() < 0.2 else None)
