"""Truncated, corrupted and hostile TensorFlow checkpoints: only a Manifest or a CkptdiffError.

Works on copies of the committed fixtures (testdata/readers/tf), so it needs no TensorFlow.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ckptdiff.readers as registry
from ckptdiff.errors import CkptdiffError
from ckptdiff.manifest import Manifest
from ckptdiff.readers.base import CountingFile
from ckptdiff.readers.tf.crc32c import crc32c, mask
from ckptdiff.readers.tf.sstable import (
    BLOCK_TRAILER_SIZE,
    BlockHandle,
    TableReader,
    parse_block,
)

FIXTURES = Path(__file__).resolve().parent.parent / "testdata" / "readers" / "tf"
FUZZ = settings(max_examples=500, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
# (folder, path to read relative to the copy, the .index inside it)
CHECKPOINTS = [("tf2_keras", "ckpt-1", "ckpt-1.index"),
               ("tf1_saver", ".", "model.ckpt-1.index"),
               ("tf2_sharded", "ckpt-1.index", "ckpt-1.index"),
               ("savedmodel_module", ".", "variables/variables.index")]


def outcome(path: Path) -> Manifest | CkptdiffError:
    """Read ``path``: a one-line CkptdiffError naming the path is an outcome; nothing else is."""
    try:
        manifest = registry.read(path)
    except CkptdiffError as exc:
        message = str(exc)
        assert message.startswith(str(path)) and "\n" not in message, message
        return exc
    json.dumps(manifest.to_dict(), ensure_ascii=False).encode("utf-8")
    return manifest


@pytest.fixture(params=CHECKPOINTS, ids=[c[0] for c in CHECKPOINTS])
def copy(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, Path, bytes]:
    """A writable copy: (path to read, its .index file, the original .index bytes)."""
    folder, read_as, index = request.param
    target = tmp_path / folder
    shutil.copytree(FIXTURES / folder, target)
    return target / read_as, target / index, (target / index).read_bytes()


def test_every_truncation_of_the_index_is_refused(copy: tuple[Path, Path, bytes]) -> None:
    path, index, original = copy
    for cut in range(len(original)):
        index.write_bytes(original[:cut])
        assert isinstance(outcome(path), CkptdiffError), cut


def test_every_flipped_byte_is_a_manifest_or_a_clear_error(
    copy: tuple[Path, Path, bytes]
) -> None:
    path, index, original = copy
    expected = registry.read(path)
    for position in range(len(original)):
        data = bytearray(original)
        data[position] ^= 0xFF
        index.write_bytes(bytes(data))
        result = outcome(path)
        # Checksums catch every change that matters; the rest (footer padding, the unused
        # metaindex block) leaves the manifest as it was.
        assert isinstance(result, CkptdiffError) or result == expected, position


@FUZZ
@given(flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 7)), min_size=1,
                      max_size=8))
def test_bit_flips_in_the_index(flips: list[tuple[int, int]], tmp_path: Path) -> None:
    target = tmp_path / "ckpt"
    if not target.exists():
        shutil.copytree(FIXTURES / "tf2_keras", target)
    original = (FIXTURES / "tf2_keras" / "ckpt-1.index").read_bytes()
    data = bytearray(original)
    for position, bit in flips:
        data[position % len(data)] ^= 1 << bit
    (target / "ckpt-1.index").write_bytes(bytes(data))
    outcome(target / "ckpt-1")


def block_spans(index: Path) -> list[tuple[int, int]]:
    """(offset, size) of every block the table reader reads, index block included."""
    with CountingFile(index) as file:
        table = TableReader(file, str(index))
        spans = [(table.index_handle.offset, table.index_handle.size)]
        index_block = table.read_block(table.index_handle, "index")
        for _, handle_bytes in parse_block(index_block):
            handle, _ = BlockHandle.decode(handle_bytes)
            spans.append((handle.offset, handle.size))
    return spans


def reseal(data: bytearray, spans: list[tuple[int, int]]) -> None:
    """Recompute every block's checksum, so mutations reach the parsers behind it."""
    for offset, size in spans:
        contents = bytes(data[offset:offset + size + 1])
        data[offset + size + 1:offset + size + BLOCK_TRAILER_SIZE] = (
            mask(crc32c(contents)).to_bytes(4, "little"))


def resealed_mutation(tmp_path: Path, folder: str, read_as: str, index_name: str,
                      edits: list[tuple[int, int]]) -> None:
    target = tmp_path / folder
    if not target.exists():
        shutil.copytree(FIXTURES / folder, target)
    original = (FIXTURES / folder / index_name).read_bytes()
    spans = block_spans(FIXTURES / folder / index_name)
    data = bytearray(original)
    for where, value in edits:
        offset, size = spans[where % len(spans)]
        data[offset + value % max(size, 1)] = value % 256
    reseal(data, spans)
    (target / index_name).write_bytes(bytes(data))
    outcome(target / read_as)


@FUZZ
@given(edits=st.lists(st.tuples(st.integers(0, 100), st.integers(0, 10**6)), min_size=1,
                      max_size=6))
def test_resealed_mutations_of_index_blocks(edits: list[tuple[int, int]], tmp_path: Path) -> None:
    resealed_mutation(tmp_path, "tf1_saver", ".", "model.ckpt-1.index", edits)
    resealed_mutation(tmp_path, "tf2_sharded", "ckpt-1", "ckpt-1.index", edits)


@pytest.mark.slow
@settings(FUZZ, max_examples=3000)
@given(edits=st.lists(st.tuples(st.integers(0, 100), st.integers(0, 10**6)), min_size=1,
                      max_size=6))
def test_resealed_mutations_long(edits: list[tuple[int, int]], tmp_path: Path) -> None:
    resealed_mutation(tmp_path, "tf2_keras", "ckpt-1", "ckpt-1.index", edits)
