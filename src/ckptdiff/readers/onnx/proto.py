"""Walks an ONNX ``ModelProto`` on disk, reading only what describes the initializers.

An ``.onnx`` file is one protobuf message; its weights are ``TensorProto.raw_data`` (or the typed
``float_data`` … fields) inline, often hundreds of megabytes, or in external files. The walk reads
each field's tag and length and seeks past every payload it does not need, as the SavedModel
reader does (:mod:`ckptdiff.readers.tf.wire`), so memory stays flat and ``bytes_read`` small.
Hand-rolled rather than ``onnx.load``: that parses the whole message, weights included, into
memory. Field numbers are onnx.proto's (checked against the ``onnx`` package in the tests):

- ModelProto: 1 ir_version, 2 producer_name, 3 producer_version, 4 domain, 5 model_version,
  7 graph, 8 opset_import (OperatorSetIdProto: 1 domain, 2 version), 14 metadata_props.
- GraphProto: 2 name, 5 initializer, 11 input, 12 output, 15 sparse_initializer
  (SparseTensorProto: 1 values, 2 indices, 3 dims).
- TensorProto: 1 dims, 2 data_type, 3 segment, 8 name, 9 raw_data, 13 external_data
  (StringStringEntryProto: 1 key, 2 value), 14 data_location (1 = EXTERNAL).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from ckptdiff.dtypes import numel
from ckptdiff.errors import CorruptFileError
from ckptdiff.readers.base import CountingFile
from ckptdiff.readers.onnx.dtypes import stored_nbytes
from ckptdiff.readers.onnx.values import ValueInfo, read_value_info
from ckptdiff.readers.tf.sstable import TableFormatError, decode_varint
from ckptdiff.readers.tf.wire import LENGTH_DELIMITED, VARINT, WireField, iter_fields, read_payload

MAX_TEXT_BYTES = 1 << 20  # one name, producer string or metadata entry
MAX_VALUE_INFO_BYTES = 1 << 20
MAX_DIMS_BYTES = 1 << 12  # 32 dims or more of 10-byte varints; ONNX tensors have a handful
# Fields walked in one message, at most: ~20 s of walking a hostile file of empty fields. Real
# graphs have up to a few hundred thousand nodes; typed data is packed (one field per tensor).
MAX_FIELDS = 10_000_000
MAX_INITIALIZERS = 1_000_000  # as many tensors as the torch zip reader's entries allow
_DATA_FIELDS = frozenset({4, 5, 6, 7, 10, 11})  # float/int32/string/int64/double/uint64 _data
_EXTERNAL = 1


@dataclass
class Initializer:
    """One ``TensorProto`` of the graph, without its values."""

    name: str = ""
    dims: tuple[int, ...] = ()
    data_type: int = 0
    raw_bytes: int | None = None  # length of raw_data, when present
    typed_bytes: int = 0  # bytes of typed data fields (float_data …), when used instead
    external: dict[str, str] = field(default_factory=dict)
    external_location: bool = False
    sparse: bool = False
    sparse_nbytes: int | None = None  # a sparse initializer: bytes of its values and indices


@dataclass
class OnnxModel:
    """What the walk found: model facts, initializers in file order, graph inputs and outputs."""

    ir_version: int = 0
    producer_name: str = ""
    producer_version: str = ""
    domain: str = ""
    model_version: int = 0
    graph_name: str = ""
    opsets: dict[str, int] = field(default_factory=dict)
    metadata_props: dict[str, str] = field(default_factory=dict)
    initializers: list[Initializer] = field(default_factory=list)
    inputs: list[ValueInfo] = field(default_factory=list)
    outputs: list[ValueInfo] = field(default_factory=list)
    graphs: int = 0


def read_model(file: CountingFile, path: str) -> OnnxModel:
    """Walk the ``ModelProto`` in ``file`` (the whole file)."""
    model = OnnxModel()
    for item in iter_fields(file, 0, file.size, path, "the ModelProto"):
        if item.number == 1 and item.wire_type == VARINT:
            model.ir_version = item.value
        elif item.number == 5 and item.wire_type == VARINT:
            model.model_version = item.value
        elif item.number in (2, 3, 4) and item.wire_type == LENGTH_DELIMITED:
            text = _text(file, item, path, "a model string")
            attribute = {2: "producer_name", 3: "producer_version", 4: "domain"}[item.number]
            setattr(model, attribute, text)
        elif item.number == 7 and item.wire_type == LENGTH_DELIMITED:
            model.graphs += 1
            _read_graph(file, item, model, path)
        elif item.number == 8 and item.wire_type == LENGTH_DELIMITED:
            domain, version = _opset(file, item, path)
            model.opsets[domain] = version
        elif item.number == 14 and item.wire_type == LENGTH_DELIMITED:
            key, value = _entry(file, item, path, "metadata_props")
            model.metadata_props[key] = value
    if not model.graphs:
        raise CorruptFileError(f"{path}: the ONNX model has no graph: truncated or damaged file?")
    return model


def _read_graph(file: CountingFile, where: WireField, model: OnnxModel, path: str) -> None:
    for item in _fields(file, where, path, "the GraphProto"):
        if item.wire_type != LENGTH_DELIMITED:
            continue
        if item.number == 2:
            model.graph_name = _text(file, item, path, "the graph name")
        elif item.number in (5, 15):
            if len(model.initializers) >= MAX_INITIALIZERS:
                raise CorruptFileError(f"{path}: refused: more than {MAX_INITIALIZERS:,} "
                                       "initializers")
            reader = _tensor if item.number == 5 else _sparse
            model.initializers.append(reader(file, item, path))
        elif item.number in (11, 12):
            data = read_payload(file, item, MAX_VALUE_INFO_BYTES, path, "a graph input/output")
            info = read_value_info(data, path)
            (model.inputs if item.number == 11 else model.outputs).append(info)


def _tensor(file: CountingFile, where: WireField, path: str) -> Initializer:
    tensor = Initializer()
    dims: list[int] = []
    for item in _fields(file, where, path, "an initializer"):
        number, wire = item.number, item.wire_type
        if number == 1 and wire == VARINT:
            dims.append(_signed(item.value))
        elif number == 1 and wire == LENGTH_DELIMITED:  # packed dims
            dims.extend(_packed(read_payload(file, item, MAX_DIMS_BYTES, path, "dims"), path))
        elif number == 2 and wire == VARINT:
            tensor.data_type = item.value
        elif number == 3:
            raise CorruptFileError(f"{path}: an initializer is split into segments, which "
                                   "ckptdiff does not read")
        elif number == 8 and wire == LENGTH_DELIMITED:
            tensor.name = _text(file, item, path, "an initializer name")
        elif number == 9 and wire == LENGTH_DELIMITED:
            tensor.raw_bytes = item.length  # the weights: skipped, never read
        elif number in _DATA_FIELDS:
            tensor.typed_bytes += item.length if wire == LENGTH_DELIMITED else 8
        elif number == 13 and wire == LENGTH_DELIMITED:
            key, value = _entry(file, item, path, "external_data")
            tensor.external[key] = value
        elif number == 14 and wire == VARINT:
            tensor.external_location = item.value == _EXTERNAL
    if any(d < 0 for d in dims):
        raise CorruptFileError(f"{path}: initializer {tensor.name!r} has a negative dimension")
    tensor.dims = tuple(dims)
    return tensor


def _sparse(file: CountingFile, where: WireField, path: str) -> Initializer:
    values: Initializer | None = None
    parts: list[Initializer] = []
    dims: list[int] = []
    for item in _fields(file, where, path, "a sparse initializer"):
        if item.number in (1, 2) and item.wire_type == LENGTH_DELIMITED:
            parts.append(_tensor(file, item, path))
            values = parts[-1] if item.number == 1 else values
        elif item.number == 3 and item.wire_type == VARINT:
            dims.append(_signed(item.value))
        elif item.number == 3 and item.wire_type == LENGTH_DELIMITED:
            dims.extend(_packed(read_payload(file, item, MAX_DIMS_BYTES, path, "dims"), path))
    if values is None or any(d < 0 for d in dims):
        raise CorruptFileError(f"{path}: a sparse initializer has no values or bad dims")
    stored = [stored_nbytes(p.data_type, numel(p.dims)) for p in parts]
    values.sparse_nbytes = None if None in stored else sum(s or 0 for s in stored)
    values.dims, values.sparse = tuple(dims), True
    return values


def _fields(file: CountingFile, where: WireField, path: str, what: str) -> Iterator[WireField]:
    # Lazily: each field is read after the caller has read the previous one's payload, which
    # iter_fields allows (it seeks to every field it reads).
    for count, item in enumerate(iter_fields(file, where.value, where.value + where.length,
                                             path, what)):
        if count >= MAX_FIELDS:
            raise CorruptFileError(f"{path}: refused {what}: more than {MAX_FIELDS:,} fields")
        yield item


def _opset(file: CountingFile, where: WireField, path: str) -> tuple[str, int]:
    domain, version = "", 0
    for item in _fields(file, where, path, "an opset_import"):
        if item.number == 1 and item.wire_type == LENGTH_DELIMITED:
            domain = _text(file, item, path, "an opset domain")
        elif item.number == 2 and item.wire_type == VARINT:
            version = _signed(item.value)
    return domain, version


def _entry(file: CountingFile, where: WireField, path: str, what: str) -> tuple[str, str]:
    key = value = ""
    for item in _fields(file, where, path, what):
        if item.number in (1, 2) and item.wire_type == LENGTH_DELIMITED:
            text = _text(file, item, path, what)
            key, value = (text, value) if item.number == 1 else (key, text)
    return key, value


def _text(file: CountingFile, item: WireField, path: str, what: str) -> str:
    data = read_payload(file, item, MAX_TEXT_BYTES, path, what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise CorruptFileError(f"{path}: {what} is not UTF-8 text: damaged file?") from None


def _signed(value: int) -> int:
    # int64 fields are varints of the two's-complement value.
    return value - (1 << 64) if value >= 1 << 63 else value


def _packed(data: bytes, path: str) -> list[int]:
    out: list[int] = []
    pos = 0
    try:
        while pos < len(data):
            value, pos = decode_varint(data, pos, len(data))
            out.append(_signed(value))
    except TableFormatError as exc:
        raise CorruptFileError(f"{path}: bad packed dims in an initializer: {exc}") from None
    return out
