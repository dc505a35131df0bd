"""Random bytes and random headers: only a Manifest or a CkptdiffError may come out.

For near-valid headers the safetensors library is the oracle: the reader accepts a file exactly
when the library opens it, and then agrees with it on every key, dtype and shape.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ckptdiff.readers as registry
from ckptdiff.errors import CkptdiffError
from ckptdiff.manifest import Manifest
from ckptdiff.readers.safetensors.header import element_bits
from ckptdiff.readers.safetensors.index import ShardedSafetensorsReader
from ckptdiff.readers.safetensors.single import SafetensorsReader

CODES = ("BOOL", "F4", "F6_E2M3", "F6_E3M2", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0",
         "F8_E4M3FNUZ", "F8_E5M2FNUZ", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "C64",
         "F64", "I64", "U64")
FUZZ = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=6)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=8,
)


def read_outcome(read: Any, path: Path) -> Manifest | CkptdiffError:
    """Call ``read(path)``; a CkptdiffError is an outcome, anything else propagates (and fails)."""
    try:
        result = read(path)
    except CkptdiffError as exc:
        assert str(exc).startswith(str(path)) and "\n" not in str(exc), str(exc)
        return exc
    assert isinstance(result, Manifest)
    json.dumps(result.to_dict(), ensure_ascii=False).encode("utf-8")  # serializable
    return result


@FUZZ
@given(data=st.binary(max_size=600))
def test_random_bytes(data: bytes, tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(data)
    if data:
        read_outcome(registry.read, path)
    read_outcome(SafetensorsReader().read, path)
    read_outcome(ShardedSafetensorsReader().read, path)


@FUZZ
@given(body=st.binary(max_size=300), tail=st.binary(max_size=64), slack=st.integers(-4, 4))
def test_random_header_bytes_with_a_plausible_length(
        body: bytes, tail: bytes, slack: int, tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(struct.pack("<Q", max(0, len(body) + slack)) + body + tail)
    read_outcome(registry.read, path)


@FUZZ
@given(header=st.dictionaries(st.text(max_size=8), json_values, max_size=4),
       tail=st.binary(max_size=32))
def test_random_header_json(header: dict[str, Any], tail: bytes, tmp_path: Path) -> None:
    raw = json.dumps(header).encode()
    path = tmp_path / "model.safetensors"
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + tail)
    read_outcome(registry.read, path)


_MUTATIONS = ("none",) * 6 + ("dtype", "shape", "offsets", "drop", "extra", "junk_shape")


@st.composite
def near_valid_files(draw: st.DrawFn) -> bytes:
    """Mostly valid headers with occasional single mutations, padding and data-length slips."""
    header: dict[str, Any] = {}
    offset = 0
    for _ in range(draw(st.integers(0, 4))):
        code = draw(st.sampled_from(CODES))
        shape = draw(st.lists(st.integers(0, 5), max_size=3))
        count = 1
        for dim in shape:
            count *= dim
        size = count * (element_bits(code) or 8) // 8
        entry: dict[str, Any] = {"dtype": code, "shape": shape,
                                 "data_offsets": [offset, offset + size]}
        offset += size
        mutation = draw(st.sampled_from(_MUTATIONS))
        if mutation == "dtype":
            entry["dtype"] = draw(st.sampled_from(["f32", "F128", "", "BOOL ", 1]))
        elif mutation == "shape":
            entry["shape"] = shape + [draw(st.integers(-2, 3))]
        elif mutation == "offsets":
            begin, end = entry["data_offsets"]
            entry["data_offsets"] = [begin + draw(st.integers(-1, 1)),
                                     end + draw(st.integers(-1, 1))]
        elif mutation == "drop":
            del entry[draw(st.sampled_from(["dtype", "shape", "data_offsets"]))]
        elif mutation == "extra":
            entry[draw(st.text(max_size=4))] = draw(json_values)
        elif mutation == "junk_shape":
            entry["shape"] = draw(json_values)
        header[draw(st.text(max_size=6))] = entry
    if draw(st.booleans()):
        header["__metadata__"] = draw(st.dictionaries(
            st.text(max_size=5), st.text(max_size=5) | json_values, max_size=3))
    indent = draw(st.sampled_from([None, 1]))
    raw = (draw(st.sampled_from(["", " ", "\n"])) + json.dumps(header, indent=indent)
           + draw(st.sampled_from(["", "  ", "\t"]))).encode()
    data_length = max(0, offset + draw(st.sampled_from([0, 0, 0, 0, 1, -1])))
    return struct.pack("<Q", len(raw)) + raw + bytes(data_length)


def _library(path: Path) -> dict[str, tuple[str, list[int]]] | None:
    safetensors = pytest.importorskip("safetensors")
    try:
        with safetensors.safe_open(str(path), framework="np") as handle:
            return {k: (handle.get_slice(k).get_dtype(), handle.get_slice(k).get_shape())
                    for k in handle.keys()}  # noqa: SIM118 - safe_open is not a dict
    except Exception:  # the library's SafetensorError
        return None


def _agrees_with_library(content: bytes, tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(content)
    outcome = read_outcome(SafetensorsReader().read, path)
    expected = _library(path)
    if expected is None:
        assert isinstance(outcome, CkptdiffError), "the library refuses what ckptdiff accepted"
        return
    assert isinstance(outcome, Manifest), f"the library opens what ckptdiff refused: {outcome}"
    raw = json.loads(content[8 : 8 + struct.unpack("<Q", content[:8])[0]])
    assert {t.key: (raw[t.key]["dtype"], list(t.shape)) for t in outcome} == expected


@FUZZ
@given(content=near_valid_files())
def test_near_valid_headers_agree_with_the_library(content: bytes, tmp_path: Path) -> None:
    _agrees_with_library(content, tmp_path)


@pytest.mark.slow
@settings(FUZZ, max_examples=2000)
@given(content=near_valid_files())
def test_near_valid_headers_agree_with_the_library_long(content: bytes, tmp_path: Path) -> None:
    _agrees_with_library(content, tmp_path)


@FUZZ
@given(index=json_values | st.fixed_dictionaries({
    "metadata": json_values,
    "weight_map": st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), st.sampled_from(
        ["s1.safetensors", "s2.safetensors", "../s1.safetensors", "nope.safetensors", "", "s1"])
        | json_values, max_size=4),
}))
def test_random_index_json(index: Any, tmp_path: Path) -> None:
    for name, keys in (("s1.safetensors", ("a", "b")), ("s2.safetensors", ("c",))):
        header = {k: {"dtype": "U8", "shape": [1], "data_offsets": [i, i + 1]}
                  for i, k in enumerate(keys)}
        raw = json.dumps(header).encode()
        (tmp_path / name).write_bytes(struct.pack("<Q", len(raw)) + raw + bytes(len(keys)))
    path = tmp_path / "model.safetensors.index.json"
    path.write_text(json.dumps(index))
    read_outcome(ShardedSafetensorsReader().read, path)
    read_outcome(ShardedSafetensorsReader().read, tmp_path)
