"""Partitioned tensors of a bundle: which keys hold their slices, and whether TensorFlow can
put the slices back together.

A partitioned variable's entry lists its slices (``TensorSliceProto``s); each stored slice is an
entry under the key TensorFlow's ``EncodeTensorNameSlice`` makes: OrderedCode of 0, the escaped
name, the rank, then each dimension's start and length (-1 for a full extent). TensorFlow's
checkpoint reader hides exactly those keys from its variable list (``BuildV2VarMaps``); any
other key is a variable of its own, even one that starts like a slice key. Reading the tensor
(``BundleReader::GetSliceValue``) registers every slice against the full shape (same rank,
inside the shape, no two overlapping), needs them to cover the tensor, reads each non-full slice
from its own entry, and copies it into place only for the dtypes it has a copy for. ckptdiff
refuses a partitioned entry TensorFlow could not read that way, and the few shapes of slices it
does not vouch for (a full extent with a start, an empty extent).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NoReturn

from ckptdiff.errors import CorruptFileError
from ckptdiff.readers.tf.proto.tensor_bundle_pb2 import BundleEntryProto, TensorSliceProto

FULL = -1  # TensorFlow's kFullExtent
MAX_SLICES = 1024  # overlap is checked pairwise
# Dtype codes GetSliceValue can copy a slice of (HANDLE_COPY; measured against TensorFlow 2.21).
COPYABLE_DTYPES = frozenset({1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 18, 29, 30})
Extents = tuple[tuple[int, int], ...]


def _unsigned(value: int) -> bytes:
    """OrderedCode ``WriteNumIncreasing``: a length byte, then the big-endian bytes."""
    body = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return bytes([len(body)]) + body


def _signed(value: int) -> bytes:
    """OrderedCode ``WriteSignedNumIncreasing``: the length in leading 1 bits (0 bits when
    negative), then the two's complement value in the bits left."""
    magnitude = ~value if value < 0 else value
    length = 1
    while magnitude >= 1 << (7 * length - 1) and length < 10:
        length += 1
    header = ((1 << length) - 1) << (8 * length - length)
    return ((value % (1 << 8 * length)) ^ header).to_bytes(length, "big")


def extents(proto: TensorSliceProto) -> Extents:
    """(start, length) per dimension, length -1 where the extent is full."""
    return tuple((e.start, e.length if e.HasField("length") else FULL) for e in proto.extent)


def slice_key(name: bytes, slice_extents: Extents) -> bytes:
    """The key TensorFlow stores the slice ``slice_extents`` of tensor ``name`` under."""
    escaped = b"".join(b"\x00\xff" if byte == 0 else b"\xff\x00" if byte == 0xFF
                       else bytes([byte]) for byte in name)
    out = b"\x00" + escaped + b"\x00\x01"
    out += _unsigned(len(slice_extents))
    return out + b"".join(_signed(start) + _signed(length) for start, length in slice_extents)


def is_full(slice_extents: Extents) -> bool:
    """True when every extent is full (the slice is the whole tensor)."""
    return all(length == FULL for _, length in slice_extents)


def _bounds(slice_extents: Extents, shape: Sequence[int]) -> list[tuple[int, int]]:
    return [(0, dim) if length == FULL else (start, start + length)
            for (start, length), dim in zip(slice_extents, shape, strict=True)]


def check_slices(key: str, shape: Sequence[int], dtype_code: int,
                 slices: Sequence[Extents], stored: dict[Extents, BundleEntryProto],
                 path: str) -> None:
    """Refuse the slices of partitioned ``key`` unless TensorFlow can reassemble them."""
    def refuse(why: str) -> NoReturn:
        raise CorruptFileError(f"{path}: partitioned tensor {key!r}: {why}; TensorFlow cannot "
                               "read it as stored")

    if len(slices) > MAX_SLICES:
        refuse(f"{len(slices):,} slices, over ckptdiff's limit of {MAX_SLICES:,}")
    boxes = []
    for slice_extents in slices:
        if len(slice_extents) != len(shape):
            refuse(f"a slice of rank {len(slice_extents)} for a shape of rank {len(shape)}")
        for (start, length), dim in zip(slice_extents, shape, strict=True):
            if (start != 0 if length == FULL else not 0 <= start < start + length <= dim):
                refuse(f"slice extent ({start}, {length}) outside dimension {dim}")
        boxes.append(_bounds(slice_extents, shape))
    for i, box in enumerate(boxes):
        for other in boxes[:i]:
            if all(max(a[0], b[0]) < min(a[1], b[1]) for a, b in zip(box, other, strict=True)):
                refuse("two slices overlap")
    covered = 0
    for box in boxes:
        volume = 1
        for low, high in box:
            volume *= high - low
        covered += volume
    total = 1
    for dim in shape:
        total *= dim
    if covered != total:
        refuse("its slices do not cover it")
    for slice_extents, box in zip(slices, boxes, strict=True):
        if is_full(slice_extents):
            continue
        entry = stored.get(slice_extents)
        if entry is None:
            refuse(f"slice {list(slice_extents)} is not stored")
        if entry.dtype != dtype_code or [d.size for d in entry.shape.dim] != [
                high - low for low, high in box]:
            refuse(f"slice {list(slice_extents)} is stored with another dtype or shape")
    direct = len(boxes) == 1 and boxes[0] == [(0, dim) for dim in shape]
    if not direct and dtype_code not in COPYABLE_DTYPES:
        refuse(f"TensorFlow copies no slices of dtype code {dtype_code}")
