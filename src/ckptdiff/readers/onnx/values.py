"""Graph inputs and outputs of an ONNX model (``ValueInfoProto``), decoded from their bytes.

They are small (a name and a type), so each is read whole and decoded here; field numbers from
onnx.proto: ValueInfoProto 1 name, 2 type; TypeProto 1 tensor_type (1 elem_type, 2 shape), 4
sequence_type, 5 map_type, 8 sparse_tensor_type, 9 optional_type; TensorShapeProto 1 dim
(1 dim_value, 2 dim_param).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ckptdiff.errors import CorruptFileError
from ckptdiff.readers.onnx.dtypes import onnx_dtype
from ckptdiff.readers.tf.sstable import TableFormatError, decode_varint
from ckptdiff.readers.tf.wire import LENGTH_DELIMITED, VARINT

_FIXED = {1: 8, 5: 4}
_OTHER_TYPES = {4: "sequence", 5: "map", 7: "opaque", 8: "sparse_tensor", 9: "optional"}


@dataclass(frozen=True)
class ValueInfo:
    """A graph input or output: its name, element dtype and shape (ints, or names of symbolic
    dimensions such as ``batch``); ``kind`` is ``tensor`` or the non-tensor type's name."""

    name: str
    kind: str
    dtype: str | None
    shape: tuple[int | str | None, ...] | None

    def to_dict(self) -> dict[str, object]:
        """The JSON object written into the manifest's metadata."""
        return {"name": self.name, "kind": self.kind, "dtype": self.dtype,
                "shape": None if self.shape is None else list(self.shape)}


def read_value_info(data: bytes, path: str) -> ValueInfo:
    """Decode one ``ValueInfoProto``."""
    try:
        name, kind, dtype, shape = "", "unknown", None, None
        for number, wire, value in _fields(data):
            if number == 1 and wire == LENGTH_DELIMITED:
                assert isinstance(value, bytes)
                name = value.decode("utf-8")
            elif number == 2 and wire == LENGTH_DELIMITED:
                assert isinstance(value, bytes)
                kind, dtype, shape = _type(value)
        return ValueInfo(name, kind, dtype, shape)
    except (TableFormatError, UnicodeDecodeError) as exc:
        raise CorruptFileError(f"{path}: bad graph input/output: {exc}") from None


def _type(data: bytes) -> tuple[str, str | None, tuple[int | str | None, ...] | None]:
    for number, wire, value in _fields(data):
        if number == 1 and wire == LENGTH_DELIMITED:
            assert isinstance(value, bytes)
            return "tensor", *_tensor_type(value)
        if number in _OTHER_TYPES:
            return _OTHER_TYPES[number], None, None
    return "unknown", None, None


def _tensor_type(data: bytes) -> tuple[str | None, tuple[int | str | None, ...] | None]:
    dtype: str | None = None
    shape: list[int | str | None] | None = None
    for number, wire, value in _fields(data):
        if number == 1 and wire == VARINT:
            assert isinstance(value, int)
            dtype = onnx_dtype(value)
        elif number == 2 and wire == LENGTH_DELIMITED:
            assert isinstance(value, bytes)
            shape = [_dimension(dim) for n, w, dim in _fields(value)
                     if n == 1 and w == LENGTH_DELIMITED and isinstance(dim, bytes)]
    return dtype, None if shape is None else tuple(shape)


def _dimension(data: bytes) -> int | str | None:
    for number, wire, value in _fields(data):
        if number == 1 and wire == VARINT:
            assert isinstance(value, int)
            return value - (1 << 64) if value >= 1 << 63 else value
        if number == 2 and wire == LENGTH_DELIMITED:
            assert isinstance(value, bytes)
            return value.decode("utf-8")
    return None  # a dimension with neither: unknown size


def _fields(data: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    pos, end = 0, len(data)
    while pos < end:
        tag, pos = decode_varint(data, pos, end)
        number, wire = tag >> 3, tag & 7
        if wire == VARINT:
            value, pos = decode_varint(data, pos, end)
            yield number, wire, value
        elif wire == LENGTH_DELIMITED:
            size, pos = decode_varint(data, pos, end)
            if pos + size > end:
                raise TableFormatError("a field runs past its message")
            yield number, wire, data[pos:pos + size]
            pos += size
        elif wire in _FIXED:
            pos += _FIXED[wire]
            if pos > end:
                raise TableFormatError("a fixed-width field runs past its message")
        else:
            raise TableFormatError(f"unsupported wire type {wire}")
