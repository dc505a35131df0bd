"""The table (.index) format pieces: CRC-32C, Snappy, blocks, restart points, compressed indexes.

Tables are rebuilt here by a small test-side writer (``build_table``) following TensorFlow's
table builder, so Snappy-compressed indexes (which TensorFlow reads but never writes) and broken
restart arrays can be made; TensorFlow itself confirms it reads the compressed index we build.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ckptdiff.readers as registry
from ckptdiff.errors import CorruptFileError
from ckptdiff.readers.base import CountingFile
from ckptdiff.readers.tf.crc32c import crc32c, mask, unmask
from ckptdiff.readers.tf.snappy import SnappyError, decompress
from ckptdiff.readers.tf.sstable import TABLE_MAGIC, TableFormatError, TableReader, parse_block

FIXTURES = Path(__file__).resolve().parent.parent / "testdata" / "readers" / "tf"


def varint(value: int) -> bytes:
    """Base-128 little-endian varint."""
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    return bytes(out + bytes([value]))


def snappy_compress(data: bytes) -> bytes:
    """A greedy Snappy compressor (literals, 1- and 2-byte-offset copies, overlaps allowed)."""
    out = bytearray(varint(len(data)))

    def literal(chunk: bytes) -> None:
        n = len(chunk) - 1
        if n < 60:
            out.append(n << 2)
        else:
            width = (n.bit_length() + 7) // 8
            out.append((59 + width) << 2)
            out.extend(n.to_bytes(width, "little"))
        out.extend(chunk)

    seen: dict[bytes, int] = {}
    pos = pending = 0
    while pos + 4 <= len(data):
        earlier = seen.get(data[pos:pos + 4])
        seen[data[pos:pos + 4]] = pos
        if earlier is None or pos - earlier >= 65536:
            pos += 1
            continue
        if pending < pos:
            literal(data[pending:pos])
        length = 4
        while (pos + length < len(data) and length < 64
               and data[earlier + length] == data[pos + length]):
            length += 1
        offset = pos - earlier
        if length <= 11 and offset < 2048:
            out.extend((1 | (length - 4) << 2 | (offset >> 8) << 5, offset & 0xFF))
        else:
            out.append(2 | (length - 1) << 2)
            out.extend(offset.to_bytes(2, "little"))
        pos = pending = pos + length
    if pending < len(data):
        literal(data[pending:])
    return bytes(out)


def build_block(entries: list[tuple[bytes, bytes]], restart_interval: int = 16) -> bytes:
    """A table block: prefix-compressed entries, then the restart array and its length."""
    out = bytearray()
    restarts: list[int] = []
    previous = b""
    for number, (key, value) in enumerate(entries):
        shared = 0
        if number % restart_interval == 0:
            restarts.append(len(out))
        else:
            while shared < min(len(key), len(previous)) and key[shared] == previous[shared]:
                shared += 1
        out += varint(shared) + varint(len(key) - shared) + varint(len(value))
        out += key[shared:] + value
        previous = key
    for offset in restarts or [0]:
        out += offset.to_bytes(4, "little")
    return bytes(out + len(restarts or [0]).to_bytes(4, "little"))


def build_table(blocks: list[list[tuple[bytes, bytes]]], snappy: bool = False) -> bytes:
    """A whole table file with one data block per item of ``blocks``."""
    out = bytearray()

    def emit(contents: bytes) -> bytes:
        kind = 0
        if snappy:
            contents, kind = snappy_compress(contents), 1
        handle = varint(len(out)) + varint(len(contents))
        out.extend(contents + bytes([kind]))
        out.extend(mask(crc32c(contents + bytes([kind]))).to_bytes(4, "little"))
        return handle

    index = [(block[-1][0] + b"\xff", emit(build_block(block))) for block in blocks]
    metaindex = emit(build_block([]))
    index_handle = emit(build_block(index, restart_interval=1))
    footer = (metaindex + index_handle).ljust(40, b"\x00") + TABLE_MAGIC.to_bytes(8, "little")
    return bytes(out + footer)


def table_entries(path: Path) -> list[tuple[bytes, bytes]]:
    """Every entry of an existing table file, read with ckptdiff's reader."""
    with CountingFile(path) as file:
        return list(TableReader(file, str(path)).entries())


def test_crc32c_known_values() -> None:
    assert crc32c(b"") == 0
    assert crc32c(b"123456789") == 0xE3069283  # the standard CRC-32C check value
    assert crc32c(b"\x00" * 32) == 0x8A9136AA  # RFC 3720 B.4 test vector
    assert crc32c(b"6789", crc32c(b"12345")) == crc32c(b"123456789")
    for value in (0, 1, 0xFFFFFFFF, 0x12345678):
        assert unmask(mask(value)) == value


def bitwise_crc32c(data: bytes) -> int:
    """CRC-32C the slow, obvious way (one bit at a time), as a reference."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=100), st.integers(0, 100))
def test_crc32c_matches_the_bitwise_reference(data: bytes, split: int) -> None:
    assert crc32c(data) == bitwise_crc32c(data)
    split = min(split, len(data))
    assert crc32c(data[split:], crc32c(data[:split])) == crc32c(data)


def test_snappy_hand_made_streams() -> None:
    # literal "abcd", then a 4-byte-offset copy of 4 (tag 0b11), then an overlapping
    # 1-byte-offset copy of 6 ("dddddd" from offset 1).
    stream = bytes([14, 3 << 2]) + b"abcd" + bytes([3 | 3 << 2]) + (4).to_bytes(4, "little")
    stream += bytes([1 | 2 << 2, 1])
    assert decompress(stream) == b"abcdabcddddddd"
    long_literal = b"x" * 70
    assert decompress(bytes([70, 60 << 2, 69]) + long_literal) == long_literal
    assert decompress(b"\x00") == b""


@pytest.mark.parametrize("stream", [
    b"", b"\x80", b"\x05\x00a",  # no preamble, bad varint, literal short of the declared size
    b"\x02\x01\x00",  # copy before any output
    b"\x04\x04ab\x05\x05",  # copy with offset beyond the output
    b"\x02\x08abc",  # literal longer than the declared size
    b"\xff\xff\xff\x7f\x00",  # declared size impossible for the input size
    b"\x03\xf0",  # truncated literal length
])
def test_snappy_rejects_malformed_streams(stream: bytes) -> None:
    with pytest.raises(SnappyError):
        decompress(stream)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_snappy_random_input_never_crashes(data: bytes) -> None:
    with contextlib.suppress(SnappyError):
        decompress(data)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([b"ab", b"abc", b"\x00", b"xyzw" * 5, b"q"]), max_size=200))
def test_snappy_round_trips_the_test_compressor(parts: list[bytes]) -> None:
    data = b"".join(parts)
    assert decompress(snappy_compress(data)) == data


def test_snappy_against_the_reference_compressor() -> None:
    cramjam = pytest.importorskip("cramjam", reason="cramjam (reference Snappy) is not installed")
    for data in (b"", b"a" * 100_000, bytes(range(256)) * 300, b"tf checkpoint index " * 999):
        assert decompress(bytes(cramjam.snappy.compress_raw(data))) == data


def test_block_restart_points_are_checked() -> None:
    entries = [(b"key%03d" % i, b"v") for i in range(40)]
    block = build_block(entries)
    assert parse_block(block) == entries
    restarts = int.from_bytes(block[-4:], "little")
    limit = len(block) - 4 * (restarts + 1)
    with pytest.raises(TableFormatError, match="restart points"):
        parse_block(block[:-4] + (10_000).to_bytes(4, "little"))
    moved = block[:limit + 4] + (3).to_bytes(4, "little") + block[limit + 8:]
    with pytest.raises(TableFormatError):
        parse_block(moved)  # second restart no longer at an entry start (or not increasing)
    # A restart point at an entry that shares a key prefix with the one before it.
    single = build_block(entries, restart_interval=1000)
    second_entry = len(build_block(entries[:1], restart_interval=1000)) - 8
    forged = single[:-8] + (0).to_bytes(4, "little") + second_entry.to_bytes(4, "little")
    with pytest.raises(TableFormatError, match="shares more of the key"):
        parse_block(forged + (2).to_bytes(4, "little"))
    with pytest.raises(TableFormatError, match="no restart count"):
        parse_block(b"\x01\x00")


def test_table_with_several_blocks_round_trips(tmp_path: Path) -> None:
    blocks = [[(b"a%04d" % (i + 100 * b), b"x" * i) for i in range(50)] for b in range(3)]
    path = tmp_path / "t.index"
    for snappy in (False, True):
        path.write_bytes(build_table(blocks, snappy=snappy))
        assert table_entries(path) == [e for block in blocks for e in block]


def snappy_copy(source: Path, target: Path) -> Path:
    """Copy a checkpoint folder, rewriting its .index files with Snappy-compressed blocks."""
    shutil.copytree(source, target)
    for index in target.glob("*.index"):
        entries = table_entries(index)
        index.write_bytes(build_table([entries[:7], entries[7:]], snappy=True))
    return target


def test_snappy_compressed_index_reads_the_same(tmp_path: Path) -> None:
    for name in ("tf1_saver", "tf2_keras"):
        plain = registry.read(FIXTURES / name)
        packed = registry.read(snappy_copy(FIXTURES / name, tmp_path / name))
        assert packed.tensors == plain.tensors
        assert packed.metadata["index_compression"] == "snappy"
        assert plain.metadata["index_compression"] == "none"


def test_tensorflow_reads_the_snappy_index_we_build(tmp_path: Path) -> None:
    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip("tensorflow is not installed")
    folder = snappy_copy(FIXTURES / "tf2_keras", tmp_path / "packed")
    script = ("import json, sys, tensorflow as tf\n"
              "print(json.dumps(tf.train.list_variables(sys.argv[1])))")
    out = subprocess.run([sys.executable, "-c", script, str(folder / "ckpt-1")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    listed = {key: shape for key, shape in json.loads(out.stdout.strip().splitlines()[-1])}
    manifest = registry.read(folder)
    ours = {t.aliases[0]: list(t.shape) for t in manifest}
    assert listed.pop("_CHECKPOINTABLE_OBJECT_GRAPH") == []
    assert ours == listed


def test_corrupt_compressed_block_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.index"
    contents = b"\x10\x00"  # Snappy: declares 16 bytes, then ends
    block = contents + b"\x01" + mask(crc32c(contents + b"\x01")).to_bytes(4, "little")
    handle = varint(0) + varint(len(contents))
    footer = (handle + handle).ljust(40, b"\x00") + TABLE_MAGIC.to_bytes(8, "little")
    path.write_bytes(block + footer)
    with pytest.raises(CorruptFileError, match="bad Snappy data"):
        table_entries(path)
