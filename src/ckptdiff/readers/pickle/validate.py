"""Argument checks for the torch pickle recorders: every value from a file is checked before use.

Checks raise :class:`RecordError` (a ``CorruptFileError`` without the path, which the loader puts
in front) with a message naming what was wrong.
"""

from __future__ import annotations

import re

from ckptdiff.errors import CorruptFileError

# torch keeps sizes, strides and offsets in int64; no real tensor has more dimensions than this.
MAX_DIM_VALUE = 2**63 - 1
MAX_NDIM = 64

_LOCATION = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(:[0-9]{1,6})?")
_PRINTABLE_KEY = re.compile(r"[\x21-\x7e]{1,128}")


class RecordError(CorruptFileError):
    """Nonsense arguments in a pickle; the loader re-raises it with the file's path in front."""


class UnsupportedRecordError(RecordError):
    """A well-formed value ckptdiff cannot describe (e.g. a nested tensor)."""


def as_uint(value: object, what: str) -> int:
    """``value`` as a non-negative int64."""
    if type(value) is not int or not 0 <= value <= MAX_DIM_VALUE:
        raise RecordError(f"{what} must be a non-negative integer, not {_show(value)}")
    return value


def as_bool(value: object, what: str) -> bool:
    """``value`` as a bool."""
    if type(value) is not bool:
        raise RecordError(f"{what} must be True or False, not {_show(value)}")
    return value


def as_shape(value: object, what: str) -> tuple[int, ...]:
    """A size: a tuple (or list) of non-negative ints."""
    if not isinstance(value, (tuple, list)) or len(value) > MAX_NDIM:
        raise RecordError(f"{what} must be a tuple of at most {MAX_NDIM} sizes, not {_show(value)}")
    return tuple(as_uint(dim, what) for dim in value)


def as_stride(value: object, ndim: int, what: str) -> tuple[int, ...]:
    """A stride with one non-negative int per dimension."""
    stride = as_shape(value, what)
    if len(stride) != ndim:
        raise RecordError(f"{what} has {len(stride)} entries for a {ndim}-d tensor")
    return stride


def as_text(value: object, what: str) -> str:
    """A str, or ASCII bytes (Python 2 pickles) decoded."""
    if isinstance(value, bytes):
        try:
            return value.decode("ascii")
        except UnicodeDecodeError:
            raise RecordError(f"{what} is not ASCII text") from None
    if not isinstance(value, str):
        raise RecordError(f"{what} must be text, not {_show(value)}")
    return value


def as_storage_key(value: object) -> str:
    """A storage key: short printable text (it becomes a zip member name and a manifest field)."""
    key = as_text(value, "storage key")
    if not _PRINTABLE_KEY.fullmatch(key):
        raise RecordError(f"storage key {key[:40]!r} is not short printable text")
    return key


def as_location(value: object) -> str:
    """A storage location tag as a device name: ``cpu``, ``cuda:0``, ``mps``, ``meta`` …

    A bare ``cuda`` (old checkpoints) becomes ``cuda:0``: torch restores it to the current CUDA
    device, which is device 0 unless the loading process chose another.
    """
    location = as_text(value, "storage location").strip()
    if not _LOCATION.fullmatch(location):
        raise RecordError(f"storage location {location[:40]!r} is not a device name")
    return "cuda:0" if location == "cuda" else location


# The location tags torch.load restores a storage to (torch/serialization.py's registry): "cpu"
# and "meta" exactly, the device backends by prefix; anything else it cannot restore.
_STORAGE_LOCATION = re.compile(r"cpu|meta|(cuda|mps|xpu|hpu|mtia|privateuseone)(:[0-9]{1,6})?")


def as_storage_location(value: object) -> str:
    """A persistent id's location tag, accepted only where torch.load knows how to restore it
    (``'cpu:0'`` or ``' cpu'`` make it raise), as a device name (see :func:`as_location`)."""
    location = as_text(value, "storage location")
    if not _STORAGE_LOCATION.fullmatch(location):
        raise RecordError(f"storage location {location[:40]!r} is not one torch.load can "
                          "restore")
    return as_location(location)


def contiguous_stride(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The row-major stride torch gives a fresh tensor of ``shape``."""
    stride: list[int] = []
    step = 1
    for dim in reversed(shape):
        stride.append(step)
        step *= max(dim, 1)
    return tuple(reversed(stride))


def _show(value: object) -> str:
    """A short, deterministic description of a bad value for an error message."""
    if isinstance(value, (bool, int, float)) or value is None:
        return repr(value)
    if isinstance(value, (str, bytes)):
        return repr(value[:40])
    return f"a {type(value).__name__}"


def check_tensor_metadata(value: object, dtype: str) -> None:
    """Refuse the tensor metadata (conj and neg bits) that torch's ``set_tensor_metadata``
    refuses, and nothing else: torch ignores a falsy value, asserts a dict otherwise, converts it
    to ``dict[str, bool]`` (keys text or bytes, values numbers, bools or None), and sets the conj
    bit, which only complex tensors have, wherever a ``conj`` key is present."""
    if not value:
        return
    if not isinstance(value, dict):
        raise RecordError("tensor metadata must be a dict")
    for key, item in value.items():
        if not _metadata_key(key) or not isinstance(item, (int, float, complex, type(None))):
            raise RecordError("tensor metadata must map names to True or False")
    if ("conj" in value or b"conj" in value) and not dtype.startswith("complex"):
        raise RecordError(f"tensor metadata sets the conj bit of a {dtype} tensor, which torch "
                          "refuses (only complex tensors have one)")


def _metadata_key(key: object) -> bool:
    if isinstance(key, bytes):
        return True
    if not isinstance(key, str):
        return False
    try:
        key.encode("utf-8")  # pybind11's conversion to std::string
    except UnicodeEncodeError:
        return False
    return True
