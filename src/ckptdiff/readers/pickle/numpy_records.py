"""numpy values inside torch pickles (scalars, dtypes, arrays), recorded as opaque descriptions.

Lightning and training loops often save ``numpy.float64`` metrics or RNG arrays next to the
weights. They are plain data, so ckptdiff reads them (a scalar's number is decoded for
``readers.torch.container_values``) without importing numpy. ``torch.load(weights_only=True)``
refuses them unless allow-listed, which the readers report in ``metadata["weights_only_refuses"]``.
"""

from __future__ import annotations

import struct

from ckptdiff.readers.pickle.records import Record
from ckptdiff.readers.pickle.validate import RecordError, as_shape, as_text

# numpy type codes (``np.dtype('f4')``) → dtype names, with the struct format of one element.
_NUMPY_CODES: dict[str, tuple[str, str]] = {
    "f2": ("float16", "e"), "f4": ("float32", "f"), "f8": ("float64", "d"),
    "i1": ("int8", "b"), "i2": ("int16", "h"), "i4": ("int32", "i"), "i8": ("int64", "q"),
    "u1": ("uint8", "B"), "u2": ("uint16", "H"), "u4": ("uint32", "I"), "u8": ("uint64", "Q"),
    "b1": ("bool", "?"), "c8": ("complex64", ""), "c16": ("complex128", ""),
}
_FORMATS = {name: fmt for name, fmt in _NUMPY_CODES.values()}


class OpaqueRecord(Record):
    """A numpy scalar, dtype or array, kept only as a description.

    ``value`` holds a scalar's decoded number, or a dtype's byte order (``<`` or ``>``).
    """

    __slots__ = ("kind", "dtype", "shape", "value", "state_allowed")

    def __init__(self, kind: str, dtype: str | None = None, value: object = None,
                 state_allowed: bool = False) -> None:
        self.kind = kind
        self.dtype = dtype
        self.shape: tuple[int, ...] | None = None
        self.value = value
        self.state_allowed = state_allowed

    def __setstate__(self, state: object) -> None:
        # numpy dtypes and arrays send one tuple of state; arrays keep their shape from it.
        if not self.state_allowed or not isinstance(state, tuple) or not state:
            raise RecordError(f"the pickle sets invalid state on a {self.kind}")
        self.state_allowed = False
        if self.kind == "numpy.dtype" and len(state) > 1 and state[1] in ("<", ">", "|", "="):
            self.value = state[1]
        elif self.kind == "numpy.ndarray" and len(state) == 5:
            self.shape = as_shape(state[1], "numpy array shape")
            if isinstance(state[2], OpaqueRecord):
                self.dtype = state[2].dtype

    def scalar_value(self) -> object:
        """The number a numpy scalar holds (``None`` for anything else)."""
        return self.value if self.kind == "numpy.scalar" else None


NDARRAY_TYPE = OpaqueRecord("numpy.ndarray type")


def numpy_dtype(*args: object) -> OpaqueRecord:
    """``numpy.dtype(code, align, copy)``."""
    if not 1 <= len(args) <= 3:
        raise RecordError("numpy.dtype takes 1 to 3 arguments")
    code = as_text(args[0], "numpy dtype code")
    name = _NUMPY_CODES.get(code, (code[:16], ""))[0]
    return OpaqueRecord("numpy.dtype", dtype=name, state_allowed=True)


def numpy_scalar(*args: object) -> OpaqueRecord:
    """``numpy.core.multiarray.scalar(dtype, raw_bytes)``: the number is decoded when simple."""
    if len(args) not in (1, 2) or not _is_dtype(args[0]):
        raise RecordError("numpy scalar needs (dtype, bytes)")
    dtype = args[0]
    assert isinstance(dtype, OpaqueRecord)
    value: object = None
    fmt = _FORMATS.get(dtype.dtype or "")
    if fmt and len(args) == 2 and isinstance(args[1], bytes):
        order = ">" if dtype.value == ">" else "<"
        if len(args[1]) == struct.calcsize(order + fmt):
            value = struct.unpack(order + fmt, args[1])[0]
    return OpaqueRecord("numpy.scalar", dtype=dtype.dtype, value=value)


def numpy_reconstruct(*args: object) -> OpaqueRecord:
    """``numpy.core.multiarray._reconstruct(ndarray, (0,), b'b')``: an array, shaped by BUILD."""
    if len(args) != 3 or args[0] is not NDARRAY_TYPE:
        raise RecordError("numpy _reconstruct needs (numpy.ndarray, shape, typecode)")
    return OpaqueRecord("numpy.ndarray", state_allowed=True)


def _is_dtype(value: object) -> bool:
    return isinstance(value, OpaqueRecord) and value.kind == "numpy.dtype"
