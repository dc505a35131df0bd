"""Every header rule of the safetensors library, broken once: a one-line ``CorruptFileError``.

Each test also asks the library: a file refused here is refused there (one deliberate
difference, duplicate JSON keys, is pinned down in its own test).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest

import ckptdiff.readers as registry
from ckptdiff.errors import CkptdiffError, CorruptFileError
from ckptdiff.readers.safetensors.single import SafetensorsReader

GOOD = {"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}


def write_raw(path: Path, header: bytes | dict[str, Any], data: bytes = b"") -> Path:
    """Write a safetensors file from a header (JSON bytes or a dict) and a data section."""
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)
    return path


def library_accepts(path: Path) -> bool:
    """True when the safetensors library opens the file."""
    safetensors = pytest.importorskip("safetensors")
    try:
        with safetensors.safe_open(str(path), framework="np"):
            return True
    except Exception:  # the library raises its own SafetensorError (and OSError subclasses)
        return False


def refused(path: Path, match: str) -> str:
    """Read ``path``: assert a one-line CorruptFileError that starts with the path."""
    with pytest.raises(CorruptFileError, match=match) as caught:
        SafetensorsReader().read(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and "\n" not in message, message
    assert not library_accepts(path)
    return message


def entry(**fields: Any) -> dict[str, Any]:
    """A header with one tensor ``w`` whose fields are GOOD's, overridden by ``fields``."""
    return {"w": {**GOOD["w"], **fields}}


def test_good_header_is_accepted(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "m.safetensors", GOOD, bytes(8))
    assert library_accepts(path) and SafetensorsReader().read(path).keys() == ["w"]


def test_header_length_over_the_library_limit(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    path.write_bytes(struct.pack("<Q", 100_000_001) + b"{}" + bytes(64))
    refused(path, "exceeds the safetensors limit of 100,000,000 bytes")


def test_header_length_past_the_end_of_file(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    path.write_bytes(struct.pack("<Q", 1000) + b'{"w": ')
    message = refused(path, "truncated download")
    assert "file ends at byte 14 but the header length says the header ends at byte 1,008" \
        in message


def test_file_shorter_than_the_length_field(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    path.write_bytes(b"\x10\x00\x00")
    refused(path, "file ends at byte 3 .*truncated download")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    path.write_bytes(b"")
    refused(path, "empty")


def test_header_not_utf8(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "m.safetensors", b'{"w\xff": 1}')
    refused(path, "not valid UTF-8")


def test_header_not_json(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "m.safetensors", b'{"w": {"dtype": "F32",')
    refused(path, "not valid JSON")


def test_header_padding_must_be_json_whitespace(tmp_path: Path) -> None:
    raw = json.dumps(GOOD).encode()
    write_raw(tmp_path / "spaces.safetensors", raw + b"    ", bytes(8))
    assert SafetensorsReader().read(tmp_path / "spaces.safetensors").keys() == ["w"]
    path = write_raw(tmp_path / "m.safetensors", raw + b"\x00\x00", bytes(8))
    refused(path, "not valid JSON")


def test_header_not_an_object(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "m.safetensors", b"[1, 2]")
    refused(path, "header is a JSON array, not an object")


def test_non_finite_numbers(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "m.safetensors", b'{"w": {"dtype": "F32", "shape": [2], '
                     b'"data_offsets": [0, 8], "note": NaN}}', bytes(8))
    refused(path, "NaN")


def test_numbers_beyond_a_double(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "m.safetensors", b'{"w": {"dtype": "F32", "shape": [2], '
                     b'"data_offsets": [0, 8], "note": 1' + b"0" * 400 + b"}}", bytes(8))
    refused(path, "out of range")


def test_unpaired_surrogate_escape(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "m.safetensors", b'{"w\\ud800": {"dtype": "F32", '
                     b'"shape": [2], "data_offsets": [0, 8]}}', bytes(8))
    refused(path, "unpaired surrogate")


def test_surrogate_look_alikes_are_fine(tmp_path: Path) -> None:
    # An escaped backslash followed by "ud800", and a proper surrogate pair: both valid.
    path = write_raw(tmp_path / "m.safetensors", b'{"w\\\\ud800\\ud83d\\ude00": {"dtype": '
                     b'"F32", "shape": [2], "data_offsets": [0, 8], "x": ["\\\\udc00"]}}', bytes(8))
    assert library_accepts(path)
    assert SafetensorsReader().read(path).keys() == ["w\\ud800\U0001f600"]


def test_long_integers_within_a_double_are_fine(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "m.safetensors", b'{"w": {"dtype": "F32", "shape": [2], '
                     b'"data_offsets": [0, 8], "note": 1' + b"0" * 300 + b"}}", bytes(8))
    assert library_accepts(path) and SafetensorsReader().read(path).keys() == ["w"]


def test_nesting_deeper_than_the_library_parses(tmp_path: Path) -> None:
    fine = b"[" * 125 + b"]" * 125
    deep = b"[" * 126 + b"]" * 126
    body = b'{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8], "x": %s}}'
    ok = write_raw(tmp_path / "ok.safetensors", body % fine, bytes(8))
    assert library_accepts(ok) and SafetensorsReader().read(ok).keys() == ["w"]
    refused(write_raw(tmp_path / "m.safetensors", body % deep, bytes(8)), "nests more than")


def test_duplicate_tensor_key_is_refused_although_the_library_keeps_the_last(
        tmp_path: Path) -> None:
    one = json.dumps(GOOD["w"]).encode()
    path = write_raw(tmp_path / "m.safetensors", b'{"w": %s, "w": %s}' % (one, one), bytes(8))
    assert library_accepts(path)  # the deliberate difference: ambiguous files are refused
    with pytest.raises(CorruptFileError, match='duplicate key "w"'):
        SafetensorsReader().read(path)


def test_duplicate_field_in_an_entry(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "m.safetensors", b'{"w": {"dtype": "F32", "dtype": "F32", '
                     b'"shape": [2], "data_offsets": [0, 8]}}', bytes(8))
    refused(path, 'duplicate key "dtype"')


def test_metadata_not_an_object(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "m.safetensors", {"__metadata__": ["a"], **GOOD}, bytes(8))
    refused(path, "__metadata__ is a JSON array, not an object of strings")


def test_metadata_value_not_a_string(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "m.safetensors", {"__metadata__": {"epoch": 3}, **GOOD}, bytes(8))
    refused(path, '__metadata__ "epoch" is a JSON number, not a string')


def test_null_metadata_is_absent_metadata(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "m.safetensors", {"__metadata__": None, **GOOD}, bytes(8))
    assert library_accepts(path)
    assert SafetensorsReader().read(path).metadata["safetensors"] == {}


def test_entry_not_an_object(tmp_path: Path) -> None:
    refused(write_raw(tmp_path / "m.safetensors", {"w": [0, 8]}, bytes(8)), "not an object")


@pytest.mark.parametrize("field", ["dtype", "shape", "data_offsets"])
def test_entry_missing_a_field(field: str, tmp_path: Path) -> None:
    header = {"w": {k: v for k, v in GOOD["w"].items() if k != field}}
    refused(write_raw(tmp_path / "m.safetensors", header, bytes(8)), f"missing field '{field}'")


def test_extra_entry_fields_are_ignored_like_the_library(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "m.safetensors", entry(note={"a": [1]}), bytes(8))
    assert library_accepts(path) and SafetensorsReader().read(path).keys() == ["w"]


@pytest.mark.parametrize("dtype", ["f32", "F128", "float32", 3, None])
def test_unknown_dtype(dtype: Any, tmp_path: Path) -> None:
    refused(write_raw(tmp_path / "m.safetensors", entry(dtype=dtype), bytes(8)), "unknown dtype")


@pytest.mark.parametrize("shape", [[-2], [2.0], [True, 2], ["2"], 2, [2**64]])
def test_shape_not_non_negative_integers(shape: Any, tmp_path: Path) -> None:
    refused(write_raw(tmp_path / "m.safetensors", entry(shape=shape), bytes(8)), "shape")


@pytest.mark.parametrize("offsets", [[0], [0, 8, 8], [0.0, 8], [-1, 8], "0,8", [0, 2**64]])
def test_data_offsets_not_a_pair_of_integers(offsets: Any, tmp_path: Path) -> None:
    path = write_raw(tmp_path / "m.safetensors", entry(data_offsets=offsets), bytes(8))
    refused(path, "data_offsets")


def test_offsets_ending_before_they_begin(tmp_path: Path) -> None:
    header = {"a": {"dtype": "U8", "shape": [0], "data_offsets": [0, 0]},
              "w": {"dtype": "U8", "shape": [0], "data_offsets": [8, 0]}}
    path = write_raw(tmp_path / "m.safetensors", header, bytes(8))
    refused(path, "end before they begin")


def test_data_not_starting_at_zero(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "m.safetensors", entry(data_offsets=[4, 12]), bytes(12))
    refused(path, r"leave a hole: bytes 0 to 4")


def test_hole_between_tensors(tmp_path: Path) -> None:
    header = {**GOOD, "v": {"dtype": "F32", "shape": [1], "data_offsets": [10, 14]}}
    path = write_raw(tmp_path / "m.safetensors", header, bytes(14))
    refused(path, r'tensor "v": data_offsets \[10, 14\] leave a hole: bytes 8 to 10')


def test_overlapping_tensors(tmp_path: Path) -> None:
    header = {**GOOD, "v": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}
    path = write_raw(tmp_path / "m.safetensors", header, bytes(12))
    refused(path, "overlap the tensor before it, which ends at 8")


def test_identical_offsets_are_an_overlap_not_an_alias(tmp_path: Path) -> None:
    # A hand-made "tied" pair: the library refuses to load it, so ckptdiff does too.
    header = {**GOOD, "tied": dict(GOOD["w"])}
    path = write_raw(tmp_path / "m.safetensors", header, bytes(8))
    refused(path, "overlap")


def test_byte_count_not_matching_shape_and_dtype(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "m.safetensors", entry(shape=[3]), bytes(8))
    refused(path, r"hold 8 bytes but shape \[3\] of F32 needs 12")


@pytest.mark.parametrize(("dtype", "count"), [("F4", 3), ("F6_E2M3", 2), ("F6_E3M2", 5)])
def test_sub_byte_dtype_not_filling_whole_bytes(dtype: str, count: int, tmp_path: Path) -> None:
    header = {"w": {"dtype": dtype, "shape": [count], "data_offsets": [0, 2]}}
    refused(write_raw(tmp_path / "m.safetensors", header, bytes(2)), "not a whole number of bytes")


@pytest.mark.parametrize(("dtype", "count", "size"), [("F4", 4, 2), ("F6_E2M3", 4, 3),
                                                       ("F6_E3M2", 8, 6)])
def test_sub_byte_dtype_sizes(dtype: str, count: int, size: int, tmp_path: Path) -> None:
    header = {"w": {"dtype": dtype, "shape": [count], "data_offsets": [0, size]}}
    path = write_raw(tmp_path / "m.safetensors", header, bytes(size))
    assert library_accepts(path)
    tensor = SafetensorsReader().read(path)["w"]
    assert (tensor.dtype, tensor.nbytes, tensor.shape) == ("other", size, (count,))


@pytest.mark.parametrize("shape", [[2**32, 2**32], [2**40, 2**40, 0], [2**62, 2]])
def test_size_overflowing_64_bits(shape: list[int], tmp_path: Path) -> None:
    path = write_raw(tmp_path / "m.safetensors", entry(shape=shape, data_offsets=[0, 0]))
    refused(path, "overflows a 64-bit size")


def test_data_section_shorter_than_the_header_says(tmp_path: Path) -> None:
    header = {"w": {"dtype": "U8", "shape": [2**31], "data_offsets": [0, 2**31]}}
    raw = json.dumps(header).encode()
    path = write_raw(tmp_path / "m.safetensors", raw, bytes(1_048_576 - 8 - len(raw)))
    message = refused(path, "truncated download")
    assert message.endswith(
        f"file ends at byte 1,048,576 but the header says {8 + len(raw) + 2**31:,}: "
        "truncated download?")


def test_bytes_after_the_last_tensor(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "m.safetensors", GOOD, bytes(9))
    refused(path, "1 more byte than the header accounts for")


def test_truncation_through_the_registry(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "m.safetensors", GOOD, bytes(8))
    data = path.read_bytes()
    for cut in range(1, len(data)):
        path.write_bytes(data[:cut])
        with pytest.raises(CkptdiffError):
            registry.read(path)
