"""Parses a GGUF header (versions 2 and 3, little-endian) by the rules of ggml's own loader.

Hand-rolled on purpose: the ``gguf`` package's ``GGUFReader`` memory-maps the whole file and
builds numpy arrays over every field and every tensor's data, and it imports numpy, which a
header-only reader must not need. Layout: ``GGUF``, u32 version, u64 tensor count, u64 key/value
count, the key/value pairs, the tensor infos (name, u32 dimension count, u64 dimensions in ggml's
order — fastest-varying first, the reverse of the shape users know —, u32 ggml type, u64 offset
into the data section), padding to ``general.alignment``, then the data, never read here.

The checks follow ``gguf_init_from_reader`` (ggml/src/gguf.cpp) and the file-bounds check of
``llama_model_loader``, so a header accepted here is one llama.cpp accepts: no empty or
duplicate keys, no arrays of arrays, ``general.alignment`` a u32 power of two, tensor names under
64 bytes and unique, at most 4 dimensions, no count that overflows int64, rows a whole number of
blocks, tensors laid out back to back in header order (each padded to the alignment) and ending
inside the file. Every count read from the file is bounded by the bytes left to hold it, and the
totals by ckptdiff's limits, before anything is allocated or looped over.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import IO, Any, cast

from ckptdiff.dtypes import BLOCK_DTYPES, DTYPE_BITS, GGML_TYPES
from ckptdiff.errors import CkptdiffError, CorruptFileError
from ckptdiff.readers.base import CountingFile, Location
from ckptdiff.readers.gguf.cursor import Cursor
from ckptdiff.readers.safety import shown

MAGIC = b"GGUF"
VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32
MAX_DIMS = 4  # GGML_MAX_DIMS
MAX_NAME_BYTES = 64  # GGML_MAX_NAME: the loader refuses names this long or longer
MAX_KEY_BYTES = 65_535  # the GGUF specification's limit on a key
MAX_KV = 100_000  # ckptdiff's limits: real files hold tens of pairs, thousands of tensors
MAX_TENSORS = 1_000_000
SHOWN_STRING_CHARS = 256
SHOWN_ARRAY_VALUES = 16
_INT64_MAX = 2**63 - 1
_STRING, _ARRAY = 8, 9
# GGUF value types: name and struct format (strings and arrays have no fixed size).
_SCALARS: dict[int, tuple[str, str]] = {
    0: ("uint8", "<B"), 1: ("int8", "<b"), 2: ("uint16", "<H"), 3: ("int16", "<h"),
    4: ("uint32", "<I"), 5: ("int32", "<i"), 6: ("float32", "<f"), 7: ("bool", "<?"),
    10: ("uint64", "<Q"), 11: ("int64", "<q"), 12: ("float64", "<d"),
}


@dataclass(frozen=True)
class GgufTensor:
    """One tensor info: ``shape`` in the order users know (ggml's dimensions reversed)."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    ggml_type: int
    offset: int
    nbytes: int


@dataclass(frozen=True)
class GgufHeader:
    """A validated header: key/values (summarized), tensors in file order, data section start."""

    version: int
    values: dict[str, Any]
    value_types: dict[str, str]
    tensors: tuple[GgufTensor, ...]
    alignment: int
    data_offset: int
    file_size: int
    bytes_read: int


def read_header(path: Location) -> GgufHeader:
    """Read and validate the GGUF header at ``path``; never reads tensor data."""
    label = str(path)
    try:
        with CountingFile(path) as file:
            cursor = Cursor(cast(IO[bytes], file), file.size, label)
            header = _parse(cursor, label)
            return GgufHeader(**{**header, "bytes_read": file.bytes_read})
    except OSError as exc:
        raise CkptdiffError(f"{label}: cannot read: {exc.strerror or exc}") from None


def _parse(cursor: Cursor, label: str) -> dict[str, Any]:
    if cursor.take(4, "the GGUF magic") != MAGIC:
        raise CorruptFileError(f"{label}: not a GGUF file (no 'GGUF' magic)")
    version = cursor.u32("the GGUF version")
    if version not in VERSIONS:
        raise CorruptFileError(f"{label}: {_version_problem(version)}")
    tensor_count = _count(cursor.u64("the tensor count"), cursor, 24, MAX_TENSORS,
                          "tensor infos", label)
    kv_count = _count(cursor.u64("the key/value count"), cursor, 14, MAX_KV,
                      "key/value pairs", label)
    values: dict[str, Any] = {}
    value_types: dict[str, str] = {}
    for _ in range(kv_count):
        key = _key(cursor, label)
        if key in values:
            raise CorruptFileError(f"{label}: duplicate metadata key {shown(key)!r}")
        value_types[key], values[key] = _value(cursor, key, label)
    alignment = _alignment(values, value_types, label)
    tensors: list[GgufTensor] = []
    names: set[str] = set()
    for _ in range(tensor_count):
        tensors.append(_tensor_info(cursor, label))
        if tensors[-1].name in names:
            raise CorruptFileError(f"{label}: duplicate tensor name {tensors[-1].name!r}")
        names.add(tensors[-1].name)
    data_offset = -(-cursor.offset // alignment) * alignment
    _check_layout(tensors, alignment, data_offset, cursor.size, label)
    return {"version": version, "values": values, "value_types": value_types,
            "tensors": tuple(tensors), "alignment": alignment, "data_offset": data_offset,
            "file_size": cursor.size}


def _version_problem(version: int) -> str:
    if version & 0xFFFF == 0 and (version >> 24) in VERSIONS:
        return ("a big-endian GGUF file: ckptdiff reads little-endian GGUF only (llama.cpp "
                "refuses it on little-endian machines too)")
    if version == 1:
        return "GGUF version 1, which llama.cpp no longer loads: convert it again"
    return f"unknown GGUF version {version:,} (ckptdiff reads versions 2 and 3)"


def _count(count: int, cursor: Cursor, least_bytes: int, limit: int, what: str,
           label: str) -> int:
    if count > cursor.remaining // least_bytes:
        raise CorruptFileError(f"{label}: the header says {count:,} {what}, more than the "
                               f"{cursor.size:,}-byte file can hold: truncated or damaged?")
    if count > limit:
        raise CorruptFileError(f"{label}: the header says {count:,} {what}, more than "
                               f"ckptdiff's limit of {limit:,}")
    return count


def _key(cursor: Cursor, label: str) -> str:
    length = cursor.u64("a metadata key's length")
    if length == 0:
        raise CorruptFileError(f"{label}: a metadata key is empty")
    if length > MAX_KEY_BYTES:
        raise CorruptFileError(f"{label}: a metadata key is {length:,} bytes long, more than "
                               f"GGUF's {MAX_KEY_BYTES:,}")
    return cursor.take(length, "a metadata key").decode("utf-8", "replace")


def _string(cursor: Cursor, what: str) -> str:
    """A string value, cut to what a manifest shows; the rest is skipped, not read."""
    length = cursor.u64(what)
    kept = min(length, SHOWN_STRING_CHARS * 4)
    text = cursor.take(kept, what).decode("utf-8", "replace")
    cursor.skip(length - kept, what)
    if length > kept or len(text) > SHOWN_STRING_CHARS:
        return f"{text[:SHOWN_STRING_CHARS]}… ({length:,} bytes)"
    return text


def _scalar(cursor: Cursor, code: int, what: str) -> Any:
    fmt = _SCALARS[code][1]
    (value,) = struct.unpack(fmt, cursor.take(struct.calcsize(fmt), what))
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN or infinity
    return value


def _value(cursor: Cursor, key: str, label: str) -> tuple[str, Any]:
    what = f"the value of {shown(key)!r}"
    code = cursor.u32(what)
    if code in _SCALARS:
        return _SCALARS[code][0], _scalar(cursor, code, what)
    if code == _STRING:
        return "string", _string(cursor, what)
    if code != _ARRAY:
        raise CorruptFileError(f"{label}: metadata {shown(key)!r} has unknown GGUF type {code}")
    item = cursor.u32(what)
    if item == _ARRAY:
        raise CorruptFileError(f"{label}: metadata {shown(key)!r} is an array of arrays, "
                               "which llama.cpp refuses")
    if item != _STRING and item not in _SCALARS:
        raise CorruptFileError(f"{label}: metadata {shown(key)!r} is an array of unknown "
                               f"GGUF type {item}")
    size = 8 if item == _STRING else struct.calcsize(_SCALARS[item][1])
    length = cursor.u64(what)
    if length > cursor.remaining // size:
        raise CorruptFileError(f"{label}: metadata {shown(key)!r} says {length:,} elements, "
                               "more than the rest of the file holds: truncated or damaged?")
    item_name = "string" if item == _STRING else _SCALARS[item][0]
    summary: dict[str, Any] = {"array": item_name, "length": length}
    if item == _STRING:
        cursor.skip_strings(length, what)
    elif length <= SHOWN_ARRAY_VALUES:
        summary["values"] = [_scalar(cursor, item, what) for _ in range(length)]
    else:
        cursor.skip(length * size, what)
    return f"array[{item_name}]", summary


def _alignment(values: dict[str, Any], types: dict[str, str], label: str) -> int:
    if "general.alignment" not in values:
        return DEFAULT_ALIGNMENT
    alignment = values["general.alignment"]
    if types["general.alignment"] != "uint32":
        raise CorruptFileError(f"{label}: general.alignment is a {types['general.alignment']}, "
                               "not the uint32 llama.cpp requires")
    if alignment == 0 or alignment & (alignment - 1):
        raise CorruptFileError(f"{label}: general.alignment {alignment:,} is not a power of 2")
    return int(alignment)


def _tensor_info(cursor: Cursor, label: str) -> GgufTensor:
    length = cursor.u64("a tensor name's length")
    if length >= MAX_NAME_BYTES:
        raise CorruptFileError(f"{label}: a tensor name is {length:,} bytes long; llama.cpp "
                               f"refuses names of {MAX_NAME_BYTES} bytes or more")
    raw = cursor.take(length, "a tensor name")
    try:
        name = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise CorruptFileError(f"{label}: tensor name {raw!r} is not UTF-8") from None
    if "\x00" in name:
        raise CorruptFileError(f"{label}: tensor name {raw!r} holds a NUL byte")
    dims = cursor.u32(f"the dimension count of {name!r}")
    if dims > MAX_DIMS:
        raise CorruptFileError(f"{label}: tensor {name!r} has {dims:,} dimensions, more than "
                               f"ggml's {MAX_DIMS}")
    ne = [cursor.u64(f"the dimensions of {name!r}") for _ in range(dims)]
    count = math.prod(ne)
    if any(n > _INT64_MAX for n in ne) or count >= _INT64_MAX:
        raise CorruptFileError(f"{label}: tensor {name!r} dimensions {ne} overflow int64")
    code = cursor.u32(f"the type of {name!r}")
    if code not in GGML_TYPES:
        raise CorruptFileError(f"{label}: tensor {name!r} has unknown ggml type {code}")
    dtype = GGML_TYPES[code]
    per_block, block_bytes = BLOCK_DTYPES.get(dtype) or (1, (DTYPE_BITS[dtype] or 0) // 8)
    row = ne[0] if ne else 1
    if row % per_block:
        raise CorruptFileError(f"{label}: tensor {name!r} of type {dtype} has rows of {row:,} "
                               f"elements, not a multiple of its block size {per_block}")
    offset = cursor.u64(f"the data offset of {name!r}")
    return GgufTensor(name, tuple(reversed(ne)), dtype, code, offset,
                      count // per_block * block_bytes)


def _check_layout(tensors: list[GgufTensor], alignment: int, data_offset: int, size: int,
                  label: str) -> None:
    expected = 0
    for tensor in tensors:
        if tensor.offset != expected:
            raise CorruptFileError(f"{label}: tensor {tensor.name!r} has data offset "
                                   f"{tensor.offset:,} where llama.cpp expects {expected:,}")
        end = data_offset + tensor.offset + tensor.nbytes
        if end > size:
            raise CorruptFileError(f"{label}: tensor {tensor.name!r} ends at byte {end:,}, past "
                                   f"the end of the file (byte {size:,}): truncated download?")
        expected += -(-tensor.nbytes // alignment) * alignment
    if tensors and data_offset > size:
        raise CorruptFileError(f"{label}: the data section would start at byte "
                               f"{data_offset:,}, past the end of the file: truncated download?")
