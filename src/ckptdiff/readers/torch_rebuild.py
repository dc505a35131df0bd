"""Recorders for torch's tensor rebuild functions (``torch._utils._rebuild_tensor_v2`` …).

Each takes exactly the arguments ``torch.save`` writes for the real function, checks their types,
and returns a :class:`TensorRecord`; nothing is allocated or executed.
"""

from __future__ import annotations

from collections.abc import Callable

from ckptdiff.readers.torch_records import (
    DtypeRecord,
    NamedRecord,
    Record,
    StorageRecord,
    TensorRecord,
    is_tensor,
)
from ckptdiff.readers.torch_validate import (
    RecordError,
    UnsupportedRecordError,
    as_bool,
    as_location,
    as_shape,
    as_stride,
    as_uint,
    contiguous_stride,
)


class Recorder(Record):
    """An allowed callable global (``torch._utils._rebuild_tensor_v2`` …): calls its recorder."""

    __slots__ = ("qualified_name", "function")

    def __init__(self, qualified_name: str, function: Callable[..., object]) -> None:
        self.qualified_name = qualified_name
        self.function = function

    def __call__(self, *args: object) -> object:
        return self.function(*args)


class TensorTypeToken(Record):
    """A tensor class global: ``torch.Tensor``, ``torch.FloatTensor``, ``torch.nn.Parameter`` …

    Calling a plain tensor class with no arguments starts a pre-1.0 legacy tensor (finished by a
    BUILD opcode); calling ``Parameter(data, requires_grad)`` marks ``data`` as a parameter.
    """

    __slots__ = ("name", "dtype", "parameter")

    def __init__(self, name: str, dtype: str, parameter: bool = False) -> None:
        self.name = name
        self.dtype = dtype
        self.parameter = parameter

    def __call__(self, *args: object) -> TensorRecord:
        if self.parameter:
            _arity(args, 1, 2, "torch.nn.Parameter")
            requires_grad = True if len(args) == 1 else as_bool(args[1], "requires_grad")
            return as_parameter(_tensor(args[0], "Parameter data"), requires_grad)
        if args:
            raise RecordError(f"{self.name}(...) with inline data is not a torch.save tensor")
        record = TensorRecord(self.dtype, (0,), stride=(1,), storage_offset=0, storage=None)
        record.pending = True
        return record


def as_parameter(data: TensorRecord, requires_grad: bool) -> TensorRecord:
    """A copy of ``data`` marked as an ``nn.Parameter`` (the data record itself is left as is)."""
    param = TensorRecord(data.dtype, data.shape, stride=data.stride,
                         storage_offset=data.storage_offset, storage=data.storage,
                         requires_grad=requires_grad, device=data.device, layout=data.layout,
                         stored_nbytes=data.stored_nbytes)
    param.parameter = True
    return param


def rebuild_tensor(*args: object) -> TensorRecord:
    """``_rebuild_tensor(storage, storage_offset, size, stride)`` (torch < 1.0)."""
    _arity(args, 4, 4, "_rebuild_tensor")
    storage = _storage(args[0])
    return _strided(storage, storage.dtype, args[1:4], requires_grad=False)


def rebuild_tensor_v2(*args: object) -> TensorRecord:
    """``_rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])``."""
    _arity(args, 6, 7, "_rebuild_tensor_v2")
    storage = _storage(args[0])
    _mapping_or_none(args[5], "backward hooks")
    if len(args) == 7:
        _mapping_or_none(args[6], "tensor metadata")
    return _strided(storage, storage.dtype, args[1:4], as_bool(args[4], "requires_grad"))


def rebuild_tensor_v3(*args: object) -> TensorRecord:
    """``_rebuild_tensor_v3(storage, offset, size, stride, requires_grad, hooks, dtype[, meta])``:
    an untyped storage viewed as ``dtype`` (uint16, float8 … since torch 2.1)."""
    _arity(args, 7, 8, "_rebuild_tensor_v3")
    storage = _storage(args[0])
    _mapping_or_none(args[5], "backward hooks")
    if len(args) == 8:
        _mapping_or_none(args[7], "tensor metadata")
    dtype = _dtype(args[6])
    return _strided(storage, dtype, args[1:4], as_bool(args[4], "requires_grad"))


def rebuild_parameter(*args: object) -> TensorRecord:
    """``_rebuild_parameter(data, requires_grad, hooks)``."""
    _arity(args, 3, 3, "_rebuild_parameter")
    _mapping_or_none(args[2], "backward hooks")
    return as_parameter(_tensor(args[0], "parameter data"), as_bool(args[1], "requires_grad"))


def rebuild_parameter_with_state(*args: object) -> TensorRecord:
    """``_rebuild_parameter_with_state(data, requires_grad, hooks, state)``; the Python state
    (attributes set on the parameter) is inert data and is ignored."""
    _arity(args, 4, 4, "_rebuild_parameter_with_state")
    _mapping_or_none(args[2], "backward hooks")
    return as_parameter(_tensor(args[0], "parameter data"), as_bool(args[1], "requires_grad"))


def rebuild_from_type_v2(*args: object) -> object:
    """``_rebuild_from_type_v2(func, new_type, args, state)``: a tensor saved with Python state."""
    _arity(args, 4, 4, "_rebuild_from_type_v2")
    func, new_type, func_args = args[0], args[1], args[2]
    if not isinstance(func, Record) or not callable(func) or not isinstance(func_args, tuple):
        raise RecordError("_rebuild_from_type_v2 needs an allowed rebuild function and a tuple")
    if not isinstance(new_type, TensorTypeToken):
        raise RecordError("_rebuild_from_type_v2 names a type that is not a tensor class")
    tensor = _tensor(func(*func_args), "rebuilt tensor")
    return as_parameter(tensor, tensor.requires_grad) if new_type.parameter else tensor


def rebuild_meta_tensor_no_storage(*args: object) -> TensorRecord:
    """``_rebuild_meta_tensor_no_storage(dtype, size, stride, requires_grad)``: a meta tensor."""
    _arity(args, 4, 4, "_rebuild_meta_tensor_no_storage")
    shape = as_shape(args[1], "meta tensor size")
    return TensorRecord(_dtype(args[0]), shape, stride=as_stride(args[2], len(shape), "stride"),
                        storage_offset=0, storage=None,
                        requires_grad=as_bool(args[3], "requires_grad"), device="meta")


def rebuild_qtensor(*args: object) -> TensorRecord:
    """``_rebuild_qtensor(storage, offset, size, stride, qparams, requires_grad, hooks)``."""
    _arity(args, 7, 7, "_rebuild_qtensor")
    storage = _storage(args[0])
    qparams = args[4]
    if not isinstance(qparams, tuple) or not qparams or not _named(qparams[0], "qscheme"):
        raise RecordError("_rebuild_qtensor: quantizer parameters must start with a qscheme")
    _mapping_or_none(args[6], "backward hooks")
    return _strided(storage, storage.dtype, args[1:4], as_bool(args[5], "requires_grad"))


def rebuild_sparse_tensor(*args: object) -> TensorRecord:
    """``_rebuild_sparse_tensor(layout, data)``: COO or compressed (CSR/CSC/BSR/BSC) sparse.

    The shape and dtype are the sparse tensor's; ``nbytes`` is what its index and value tensors
    store, and there is no single storage (``storage`` is ``None``).
    """
    _arity(args, 2, 2, "_rebuild_sparse_tensor")
    layout, data = args
    if not _named(layout, "layout") or not isinstance(data, tuple) or not 3 <= len(data) <= 4:
        raise RecordError("_rebuild_sparse_tensor needs (layout, (tensors..., size))")
    assert isinstance(layout, NamedRecord)
    if layout.name == "sparse_coo":
        parts, size = data[:2], data[2]
    elif layout.name in ("sparse_csr", "sparse_csc", "sparse_bsr", "sparse_bsc") and len(data) == 4:
        parts, size = data[:3], data[3]
    else:
        raise RecordError(f"_rebuild_sparse_tensor: unexpected layout {layout.name!r}")
    tensors = [_tensor(part, "sparse component") for part in parts]
    values = tensors[-1]
    stored = sum(t.nbytes or 0 for t in tensors)
    return TensorRecord(values.dtype, as_shape(size, "sparse size"), stride=None,
                        storage_offset=None, storage=None, device=values.device,
                        layout=layout.name, stored_nbytes=stored)


def rebuild_nested_tensor(*args: object) -> TensorRecord:
    """``_rebuild_nested_tensor``: nested tensors have ragged shapes the manifest cannot hold."""
    raise UnsupportedRecordError(
        "holds a nested tensor (torch.nested), which has no single shape; "
        "ckptdiff cannot describe it"
    )


def rebuild_wrapper_subclass(*args: object) -> TensorRecord:
    """``_rebuild_wrapper_subclass(cls, dtype, size, stride, offset, layout, device, grad)``."""
    _arity(args, 8, 8, "_rebuild_wrapper_subclass")
    if not isinstance(args[0], TensorTypeToken) or not _named(args[5], "layout"):
        raise RecordError("_rebuild_wrapper_subclass needs a tensor class and a layout")
    shape = as_shape(args[2], "size")
    return TensorRecord(_dtype(args[1]), shape, stride=as_stride(args[3], len(shape), "stride"),
                        storage_offset=as_uint(args[4], "storage offset"), storage=None,
                        requires_grad=as_bool(args[7], "requires_grad"), device=_device(args[6]))


def rebuild_device_tensor_from_cpu_tensor(*args: object) -> TensorRecord:
    """``_rebuild_device_tensor_from_cpu_tensor(data, dtype, device, requires_grad)`` (XLA …):
    a CPU copy in the file, moved to ``device`` on load, so the result has no file storage."""
    _arity(args, 4, 4, "_rebuild_device_tensor_from_cpu_tensor")
    shape = _tensor(args[0], "device tensor data").shape
    return _moved(shape, args[1:])


def rebuild_device_tensor_from_numpy(*args: object) -> TensorRecord:
    """``_rebuild_device_tensor_from_numpy(array, dtype, device, requires_grad)``."""
    _arity(args, 4, 4, "_rebuild_device_tensor_from_numpy")
    shape = getattr(args[0], "shape", None)
    if not isinstance(shape, tuple):
        raise RecordError("_rebuild_device_tensor_from_numpy needs a numpy array")
    return _moved(shape, args[1:])


def _moved(shape: tuple[int, ...], rest: tuple[object, ...]) -> TensorRecord:
    return TensorRecord(_dtype(rest[0]), shape, stride=contiguous_stride(shape), storage_offset=0,
                        storage=None, requires_grad=as_bool(rest[2], "requires_grad"),
                        device=_device(rest[1]))


def _strided(storage: StorageRecord, dtype: str, geometry: tuple[object, ...],
             requires_grad: bool) -> TensorRecord:
    offset = as_uint(geometry[0], "storage offset")
    shape = as_shape(geometry[1], "size")
    stride = as_stride(geometry[2], len(shape), "stride")
    return TensorRecord(dtype, shape, stride=stride, storage_offset=offset, storage=storage,
                        requires_grad=requires_grad)


def _arity(args: tuple[object, ...], low: int, high: int, name: str) -> None:
    if not low <= len(args) <= high:
        expected = str(low) if low == high else f"{low} to {high}"
        raise RecordError(f"{name} takes {expected} arguments, the pickle passes {len(args)}")


def _storage(value: object) -> StorageRecord:
    if not isinstance(value, StorageRecord):
        raise RecordError("a tensor's storage argument is not a storage")
    return value


def _tensor(value: object, what: str) -> TensorRecord:
    if not is_tensor(value):
        raise RecordError(f"{what} is not a tensor")
    return value


def _dtype(value: object) -> str:
    if not isinstance(value, DtypeRecord):
        raise RecordError("a dtype argument is not a torch dtype")
    return value.name


def _device(value: object) -> str:
    if _named(value, "device"):
        assert isinstance(value, NamedRecord)
        return value.name
    return as_location(value)


def _named(value: object, kind: str) -> bool:
    return isinstance(value, NamedRecord) and value.kind == kind


def _mapping_or_none(value: object, what: str) -> None:
    if value is not None and not isinstance(value, dict):
        raise RecordError(f"{what} must be a dict")
