"""Inert stand-ins for the objects a torch pickle describes (storages, tensors, dtypes, …).

The restricted unpickler never builds a real torch object: every allowed global resolves to one of
these records, which only remember what the manifest needs. Each record class has ``__slots__``
(no ``__dict__`` for a BUILD opcode to fill) and a ``__setstate__`` that refuses state, except
where a real torch pickle sends some (an ``OrderedDict``'s ``_metadata``, pre-1.0 tensors), and
there the state is validated.
"""

from __future__ import annotations

from typing import TypeGuard

from ckptdiff.dtypes import TORCH_DTYPES, TORCH_OTHER_BITS, itemsize, numel
from ckptdiff.readers.pickle.validate import (
    RecordError,
    as_shape,
    as_stride,
    as_uint,
)


class Record:
    """Base of every record: slotted, and a BUILD opcode on it is an error."""

    __slots__ = ()

    def __setstate__(self, state: object) -> None:
        raise RecordError(f"the pickle sets state on a {type(self).__name__}, which takes none")


def torch_dtype_bits(name: str) -> int | None:
    """Bits per element of the torch dtype ``name`` (``float32``, ``qint8`` …), if known."""
    vocabulary = TORCH_DTYPES.get(name)
    if vocabulary is not None:
        size = itemsize(vocabulary)
        return None if size is None else size * 8
    return TORCH_OTHER_BITS.get(name)


def torch_dtype_bytes(name: str) -> int | None:
    """Bytes per element of a torch dtype (sub-byte packed dtypes count one byte per element)."""
    bits = torch_dtype_bits(name)
    return None if bits is None else max(1, bits // 8)


class DtypeRecord(Record):
    """A torch dtype global such as ``torch.float32``."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


class NamedRecord(Record):
    """A harmless torch constant kept by name: a layout, a qscheme, a device."""

    __slots__ = ("kind", "name")

    def __init__(self, kind: str, name: str) -> None:
        self.kind = kind
        self.name = name


class StorageTypeToken(Record):
    """A storage class global (``torch.FloatStorage``, ``torch.UntypedStorage``).

    ``dtype`` is the element dtype the class implies: ``uint8`` for untyped storages, ``None`` for
    ``torch.storage.TypedStorage``, which says nothing on its own.
    """

    __slots__ = ("name", "dtype")

    def __init__(self, name: str, dtype: str | None) -> None:
        self.name = name
        self.dtype = dtype


class StorageRecord(Record):
    """One storage a tensor points into: its key, element dtype, element count and device.

    ``root`` is the key whose bytes hold it (differs from ``key`` only for legacy storage views,
    which start ``base_offset`` elements into the root storage). ``type_name`` is the storage
    class the file names (``FloatStorage``, ``UntypedStorage``).
    """

    __slots__ = ("key", "type_name", "dtype", "numel", "device", "root", "base_offset")

    def __init__(self, key: str, type_name: str, dtype: str, numel: int, device: str,
                 root: str | None = None, base_offset: int = 0) -> None:
        self.key = key
        self.type_name = type_name
        self.dtype = dtype
        self.numel = numel
        self.device = device
        self.root = key if root is None else root
        self.base_offset = base_offset

    @property
    def nbytes(self) -> int:
        """Bytes the storage occupies."""
        return self.numel * (torch_dtype_bytes(self.dtype) or 1)


class TensorRecord(Record):
    """Everything about one tensor but its values.

    ``storage`` is ``None`` for tensors without one (meta, sparse, wrapper subclasses).
    ``stored_nbytes`` overrides numel × itemsize where the bytes on disk differ (sparse tensors).
    A record made by calling a legacy tensor class (``torch.FloatTensor()``) is ``pending`` until a
    BUILD opcode sets it, once.
    """

    __slots__ = ("dtype", "shape", "stride", "storage_offset", "storage", "requires_grad",
                 "parameter", "device", "layout", "stored_nbytes", "pending")

    def __init__(self, dtype: str, shape: tuple[int, ...], *, stride: tuple[int, ...] | None,
                 storage_offset: int | None, storage: StorageRecord | None,
                 requires_grad: bool = False, device: str | None = None,
                 layout: str = "strided", stored_nbytes: int | None = None) -> None:
        self.dtype = dtype
        self.shape = shape
        self.stride = stride
        self.storage_offset = storage_offset
        self.storage = storage
        self.requires_grad = requires_grad
        self.parameter = False
        self.device = device if device is not None else (storage.device if storage else None)
        self.layout = layout
        self.stored_nbytes = stored_nbytes
        self.pending = False

    def __setstate__(self, state: object) -> None:
        # Only the pre-1.0 form ``torch.FloatTensor()`` + BUILD (storage, offset, size, stride).
        if not self.pending:
            raise RecordError("the pickle sets state on an already built tensor")
        if not isinstance(state, tuple) or len(state) != 4:
            raise RecordError("a legacy tensor's state must be (storage, offset, size, stride)")
        storage = state[0]
        if not isinstance(storage, StorageRecord):
            raise RecordError("a legacy tensor's state does not start with a storage")
        self.shape = as_shape(state[2], "legacy tensor size")
        self.stride = as_stride(state[3], len(self.shape), "legacy tensor stride")
        self.storage_offset = as_uint(state[1], "legacy tensor offset")
        self.storage = storage
        self.dtype = storage.dtype
        self.device = storage.device
        self.pending = False
        needed = self.extent_bytes()
        if needed is not None and needed > storage.nbytes:
            raise RecordError(f"a legacy tensor needs {needed:,} bytes of storage {storage.key}, "
                              f"which holds {storage.nbytes:,}")

    def extent_bytes(self) -> int | None:
        """Bytes from the storage's start to the end of the tensor's last element (``None`` when
        the tensor has no strided storage or its element size is unknown)."""
        size = torch_dtype_bytes(self.dtype)
        if self.storage is None or self.stride is None or size is None:
            return None
        if self.numel == 0:
            return 0
        span = 1 + sum((dim - 1) * step for dim, step in zip(self.shape, self.stride,
                                                              strict=True))
        return ((self.storage_offset or 0) + span) * size

    @property
    def numel(self) -> int:
        """Number of elements (1 for a scalar)."""
        return numel(self.shape)

    @property
    def nbytes(self) -> int | None:
        """Bytes of the tensor's data: numel × itemsize, or the stored size where it differs."""
        if self.stored_nbytes is not None:
            return self.stored_nbytes
        bits = torch_dtype_bits(self.dtype)
        return None if bits is None else self.numel * bits // 8


class RecordedDict(dict[object, object]):
    """``collections.OrderedDict`` / ``Counter`` as a plain dict that accepts attribute state.

    torch pickles a state dict's ``_metadata`` (module versions) as BUILD state; it is validated
    as a str-keyed dict and kept aside, never set as attributes.
    """

    __slots__ = ("kind", "attributes")

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.attributes: dict[str, object] = {}

    def __setstate__(self, state: object) -> None:
        if state is None:
            return
        if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
            raise RecordError(f"the pickle sets non-attribute state on a {self.kind}")
        self.attributes.update(state)


def is_tensor(value: object) -> TypeGuard[TensorRecord]:
    """True for a finished tensor record."""
    return isinstance(value, TensorRecord) and not value.pending
