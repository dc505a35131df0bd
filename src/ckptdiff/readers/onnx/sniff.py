"""Recognising an ONNX model, which has no magic number.

A ``ModelProto`` is written in field-number order, so it starts with ``ir_version`` (field 1, a
small varint) and is followed by model fields (producer strings, …) up to the ``graph`` (field 7).
A SavedModel's ``saved_model.pb`` also starts with field 1 (its schema version) but then holds
only ``meta_graphs`` (field 2, binary): requiring every top-level field before the graph to be an
ONNX model field of the right wire type, its strings valid UTF-8, and the graph to be reached,
keeps the sniffer from claiming it or any other protobuf.
"""

from __future__ import annotations

from ckptdiff.readers.base import Location, open_binary
from ckptdiff.readers.tf.sstable import TableFormatError, decode_varint

_MAX_IR_VERSION = 64  # ONNX is at 13; anything far beyond is not an ONNX model
_TEXT_FIELDS = frozenset({2, 3, 4, 6})  # producer_name, producer_version, domain, doc_string
# opset_import, metadata_props, training_info, functions, configuration: skipped by length.
_MESSAGE_FIELDS = frozenset({8, 14, 20, 25, 26})
_MAX_PREFIX = 1 << 20  # bytes of model fields before the graph (a long doc_string at most)
_MORE = None  # the walk ran out of bytes before deciding


def looks_like_onnx(head: bytes, path: Location) -> bool:
    """True when ``head`` (the first bytes) starts like a ``ModelProto`` with a graph."""
    if len(head) < 2 or head[0] != 0x08 or not 1 <= head[1] <= _MAX_IR_VERSION:
        return False
    decided = _walk(head)
    if decided is _MORE and len(head) >= 4096:  # the graph starts past the head: read on
        try:
            with open_binary(path) as handle:
                decided = _walk(handle.read(_MAX_PREFIX))
        except OSError:
            return False
    return bool(decided)


def _walk(data: bytes) -> bool | None:
    pos = 2
    try:
        while pos < len(data):
            tag, pos = decode_varint(data, pos, len(data))
            number, wire = tag >> 3, tag & 7
            if number == 7 and wire == 2:
                return True
            if number == 5 and wire == 0:
                _, pos = decode_varint(data, pos, len(data))
            elif wire == 2 and (number in _TEXT_FIELDS or number in _MESSAGE_FIELDS):
                size, pos = decode_varint(data, pos, len(data))
                if pos + size > len(data):
                    return _MORE
                if number in _TEXT_FIELDS:
                    data[pos:pos + size].decode("utf-8")
                pos += size
            else:
                return False
    except TableFormatError:
        return _MORE  # a varint cut by the end of the data
    except UnicodeDecodeError:
        return False
    return _MORE
