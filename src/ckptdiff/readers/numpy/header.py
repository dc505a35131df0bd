"""The header of one ``.npy`` array (format versions 1.0, 2.0 and 3.0), parsed as numpy does.

Layout: ``\\x93NUMPY``, a major and a minor version byte, the header length (u16 in 1.0, u32
in 2.0 and 3.0), then the header: a Python dict literal such as
``{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }`` (latin-1 before 3.0, UTF-8 in
3.0), padded with spaces and a newline. The data follows.

The dict is parsed with :func:`ast.literal_eval`, the parser numpy itself uses, on a string
bounded by numpy's own limit (``max_header_size``, 10,000 bytes): a hand-written parser could
accept or refuse what numpy does not, and ``literal_eval`` builds literals only, never calling
anything. Its checks follow ``numpy.lib.format._read_array_header``: exactly the keys
``descr``, ``fortran_order`` and ``shape``, a tuple of non-negative ints, a bool. Object arrays
(``|O``, also inside a structured dtype) are refused as unsafe: loading them runs pickle.
"""

from __future__ import annotations

import ast
import re
import struct
from dataclasses import dataclass
from typing import Any

from ckptdiff.dtypes import numel
from ckptdiff.errors import CkptdiffError, CorruptFileError, UnsafeContentError
from ckptdiff.readers.safety import shown

MAGIC = b"\x93NUMPY"
MAX_HEADER_BYTES = 10_000  # numpy.lib.format._MAX_HEADER_SIZE
PREFIX_BYTES = 12 + MAX_HEADER_BYTES  # all a reader ever needs from the start of an array
MAX_DIMS = 64  # NPY_MAXDIMS
_INTP_MAX = 2**63 - 1
_KEYS = {"descr", "fortran_order", "shape"}
_DESCR = re.compile(r"([<>|=]?)([a-zA-Z])(\d*)(\[\w+\])?")
# (kind, size in bytes) -> vocabulary name.
_NAMES = {("f", 2): "float16", ("f", 4): "float32", ("f", 8): "float64",
          ("i", 1): "int8", ("i", 2): "int16", ("i", 4): "int32", ("i", 8): "int64",
          ("u", 1): "uint8", ("u", 2): "uint16", ("u", 4): "uint32", ("u", 8): "uint64",
          ("b", 1): "bool", ("c", 8): "complex64", ("c", 16): "complex128"}


class ObjectArrayError(UnsafeContentError):
    """A ``.npy`` of Python objects: numpy loads it only through pickle (exit 3)."""

    def __init__(self, path: str, descr: str) -> None:
        CkptdiffError.__init__(
            self, f"{path}: refused: an array of Python objects (dtype {shown(descr)!r}), which "
            "numpy loads only by unpickling (allow_pickle=True); nothing was read or executed")
        self.globals = ()
        self.path = path


@dataclass(frozen=True)
class NpyHeader:
    """One array's header: vocabulary dtype, bytes per element, and where its data starts."""

    descr: str
    dtype: str
    itemsize: int
    shape: tuple[int, ...]
    fortran_order: bool
    version: str
    data_offset: int

    @property
    def nbytes(self) -> int:
        """Bytes of the array's data."""
        return numel(self.shape) * self.itemsize


def header_length(prefix: bytes, label: str) -> tuple[str, int, int]:
    """The version, where the header text starts and its length, from an array's first bytes."""
    if len(prefix) < 10 or not prefix.startswith(MAGIC):
        raise CorruptFileError(f"{label}: not a .npy array (no \\x93NUMPY magic): truncated?")
    major, minor = prefix[6], prefix[7]
    if (major, minor) not in ((1, 0), (2, 0), (3, 0)):
        raise CorruptFileError(f"{label}: unknown .npy format version {major}.{minor} "
                               "(numpy writes 1.0, 2.0 and 3.0)")
    if major == 1:
        return "1.0", 10, struct.unpack_from("<H", prefix, 8)[0]
    if len(prefix) < 12:
        raise CorruptFileError(f"{label}: file ends inside the .npy header: truncated download?")
    return f"{major}.0", 12, struct.unpack_from("<I", prefix, 8)[0]


def parse_header(prefix: bytes, label: str) -> NpyHeader:
    """Parse the header at the start of ``prefix`` (at least the first :data:`PREFIX_BYTES`
    of the array, or all of it when shorter)."""
    version, start, length = header_length(prefix, label)
    if length > MAX_HEADER_BYTES:
        raise CorruptFileError(f"{label}: .npy header of {length:,} bytes, more than numpy's "
                               f"limit of {MAX_HEADER_BYTES:,} (np.load refuses it too)")
    raw = prefix[start:start + length]
    if len(raw) < length:
        raise CorruptFileError(f"{label}: file ends inside the .npy header: truncated download?")
    text = raw.decode("utf-8" if version == "3.0" else "latin1", "replace")
    try:
        document = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise CorruptFileError(f"{label}: the .npy header is not a Python dict literal: "
                               f"{shown(text.strip(), 80)!r}") from None
    if not isinstance(document, dict) or set(document) != _KEYS:
        raise CorruptFileError(f"{label}: the .npy header must hold exactly descr, fortran_order "
                               f"and shape: {shown(text.strip(), 80)!r}")
    shape = document["shape"]
    if not isinstance(shape, tuple) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise CorruptFileError(f"{label}: .npy shape {shown(repr(shape), 80)} is not a tuple "
                               "of non-negative ints")
    if len(shape) > MAX_DIMS or any(d > _INTP_MAX for d in shape):
        raise CorruptFileError(f"{label}: .npy shape {shown(repr(shape), 80)} has more than "
                               f"numpy's {MAX_DIMS} dimensions or a dimension over 2**63")
    if not isinstance(document["fortran_order"], bool):
        raise CorruptFileError(f"{label}: .npy fortran_order is not True or False")
    dtype, itemsize = describe_dtype(document["descr"], label)
    return NpyHeader(repr(document["descr"]) if not isinstance(document["descr"], str)
                     else document["descr"], dtype, itemsize, shape,
                     document["fortran_order"], version, start + length)


def describe_dtype(descr: Any, label: str) -> tuple[str, int]:
    """Vocabulary name and bytes per element of a numpy ``descr`` (``'<f4'``, a field list)."""
    if isinstance(descr, str):
        match = _DESCR.fullmatch(descr)
        if match is None:
            raise CorruptFileError(f"{label}: .npy descr {shown(descr, 80)!r} is not a dtype")
        kind, digits = match.group(2), match.group(3)
        if kind == "O":
            raise ObjectArrayError(label, descr)
        size = int(digits) if digits else 0
        if kind == "U":
            return "string", 4 * size
        if kind in "Sa":
            return "string", size
        if kind not in "fiubcVMm" or size == 0 and kind != "V":
            raise CorruptFileError(f"{label}: .npy descr {shown(descr, 80)!r} is not a dtype")
        return _NAMES.get((kind, size), "other"), size
    if isinstance(descr, list) and descr:
        return "other", sum(_field_size(field, label) for field in descr)
    raise CorruptFileError(f"{label}: .npy descr {shown(repr(descr), 80)} is not a dtype")


def _field_size(field: Any, label: str) -> int:
    """Bytes of one ``(name, descr[, shape])`` field of a structured dtype (no padding:
    ``descr`` lists padding as fields named ``''``)."""
    if not isinstance(field, tuple) or len(field) not in (2, 3) or not isinstance(field[0], str):
        raise CorruptFileError(f"{label}: .npy structured descr field {shown(repr(field), 80)} "
                               "is malformed")
    size = describe_dtype(field[1], label)[1]
    if len(field) == 3:
        shape = field[2] if isinstance(field[2], tuple) else (field[2],)
        if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
            raise CorruptFileError(f"{label}: .npy field shape {shown(repr(field[2]), 80)} is "
                                   "malformed")
        size *= numel(shape)
    return size
