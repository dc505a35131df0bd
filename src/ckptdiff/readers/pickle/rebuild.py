"""Recorders for torch's rebuild functions of strided tensors (``_rebuild_tensor_v2`` …).

Each takes exactly the arguments ``torch.save`` writes for the real function, checks their types,
and returns a :class:`TensorRecord`; nothing is allocated or executed. Other layouts are in
:mod:`ckptdiff.readers.pickle.rebuild_special`.
"""

from __future__ import annotations

from collections.abc import Callable

from ckptdiff.readers.pickle.records import (
    DtypeRecord,
    NamedRecord,
    Record,
    StorageRecord,
    TensorRecord,
    is_tensor,
)
from ckptdiff.readers.pickle.validate import (
    RecordError,
    as_bool,
    as_location,
    as_shape,
    as_stride,
    as_uint,
    check_tensor_metadata,
)
from ckptdiff.readers.pickle.weights_only import TENSOR_DATA_ATTRIBUTES


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
            check_arity(args, 1, 2, "torch.nn.Parameter")
            requires_grad = True if len(args) == 1 else as_bool(args[1], "requires_grad")
            return as_parameter(tensor_arg(args[0], "Parameter data"), requires_grad)
        if args:
            raise RecordError(f"{self.name}(...) with inline data is not a torch.save tensor")
        record = TensorRecord(self.dtype, (0,), stride=(1,), storage_offset=0, storage=None)
        record.pending = True
        return record


def as_parameter(data: TensorRecord, requires_grad: bool) -> TensorRecord:
    """A copy of ``data`` marked as an ``nn.Parameter`` (the data record itself is left as is)."""
    if requires_grad and not grad_capable(data.dtype):
        raise RecordError(f"an {data.dtype} nn.Parameter with requires_grad=True, which torch "
                          "refuses to load (only floating and complex tensors take gradients)")
    param = TensorRecord(data.dtype, data.shape, stride=data.stride,
                         storage_offset=data.storage_offset, storage=data.storage,
                         requires_grad=requires_grad, device=data.device, layout=data.layout,
                         stored_nbytes=data.stored_nbytes)
    param.parameter = True
    return param


def rebuild_tensor(*args: object) -> TensorRecord:
    """``_rebuild_tensor(storage, storage_offset, size, stride)`` (torch < 1.0)."""
    check_arity(args, 4, 4, "_rebuild_tensor")
    storage = storage_arg(args[0])
    return strided(storage, storage.dtype, args[1:4], requires_grad=False)


def rebuild_tensor_v2(*args: object) -> TensorRecord:
    """``_rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])``.

    The backward hooks, of any type, are not checked: torch only stores them on the tensor
    (``tensor._backward_hooks = hooks``), which changes nothing that loads."""
    check_arity(args, 6, 7, "_rebuild_tensor_v2")
    storage = storage_arg(args[0])
    if len(args) == 7:
        check_tensor_metadata(args[6], storage.dtype)
    return strided(storage, storage.dtype, args[1:4], as_bool(args[4], "requires_grad"))


def rebuild_tensor_v3(*args: object) -> TensorRecord:
    """``_rebuild_tensor_v3(storage, offset, size, stride, requires_grad, hooks, dtype[, meta])``:
    an untyped storage viewed as ``dtype`` (uint16, float8 … since torch 2.1)."""
    check_arity(args, 7, 8, "_rebuild_tensor_v3")
    storage = storage_arg(args[0])
    dtype = dtype_arg(args[6])
    if len(args) == 8:
        check_tensor_metadata(args[7], dtype)
    return strided(storage, dtype, args[1:4], as_bool(args[4], "requires_grad"))


def rebuild_parameter(*args: object) -> TensorRecord:
    """``_rebuild_parameter(data, requires_grad, hooks)``."""
    check_arity(args, 3, 3, "_rebuild_parameter")
    return as_parameter(tensor_arg(args[0], "parameter data"), as_bool(args[1], "requires_grad"))


def rebuild_parameter_with_state(*args: object) -> TensorRecord:
    """``_rebuild_parameter_with_state(data, requires_grad, hooks, state)``; the Python state
    (attributes set on the parameter) is inert data, checked by :func:`check_tensor_state`."""
    check_arity(args, 4, 4, "_rebuild_parameter_with_state")
    check_tensor_state(args[3])
    return as_parameter(tensor_arg(args[0], "parameter data"), as_bool(args[1], "requires_grad"))


def rebuild_from_type_v2(*args: object) -> object:
    """``_rebuild_from_type_v2(func, new_type, args, state)``: a tensor saved with Python state."""
    check_arity(args, 4, 4, "_rebuild_from_type_v2")
    func, new_type, func_args = args[0], args[1], args[2]
    if not isinstance(func, Record) or not callable(func) or not isinstance(func_args, tuple):
        raise RecordError("_rebuild_from_type_v2 needs an allowed rebuild function and a tuple")
    if not isinstance(new_type, TensorTypeToken):
        raise RecordError("_rebuild_from_type_v2 names a type that is not a tensor class")
    check_tensor_state(args[3])
    tensor = tensor_arg(func(*func_args), "rebuilt tensor")
    return as_parameter(tensor, tensor.requires_grad) if new_type.parameter else tensor


def rebuild_meta_tensor_no_storage(*args: object) -> TensorRecord:
    """``_rebuild_meta_tensor_no_storage(dtype, size, stride, requires_grad)``: a meta tensor."""
    check_arity(args, 4, 4, "_rebuild_meta_tensor_no_storage")
    shape = as_shape(args[1], "meta tensor size")
    return TensorRecord(dtype_arg(args[0]), shape, stride=as_stride(args[2], len(shape), "stride"),
                        storage_offset=0, storage=None,
                        requires_grad=as_bool(args[3], "requires_grad"), device="meta")


def rebuild_qtensor(*args: object) -> TensorRecord:
    """``_rebuild_qtensor(storage, offset, size, stride, qparams, requires_grad, hooks)``."""
    check_arity(args, 7, 7, "_rebuild_qtensor")
    storage = storage_arg(args[0])
    qparams = args[4]
    if not isinstance(qparams, tuple) or not qparams or not is_named(qparams[0], "qscheme"):
        raise RecordError("_rebuild_qtensor: quantizer parameters must start with a qscheme")
    return strided(storage, storage.dtype, args[1:4], as_bool(args[5], "requires_grad"))


def check_tensor_state(state: object) -> None:
    """Refuse Python state that torch would apply to a tensor in a way that changes it.

    torch sets each key of the state (a dict, or a ``(dict, slots dict)`` pair) with ``setattr``
    (``torch._utils._set_obj_state``): plain attributes leave the tensor as it is, but a key
    naming one of the tensor's own data attributes (``data``, ``requires_grad`` …) replaces what
    loads, so ckptdiff refuses the file rather than report the tensor before that change.
    """
    parts = state if isinstance(state, tuple) else (state,)
    if isinstance(state, tuple) and len(state) != 2:
        raise RecordError("a tensor's pickled state must be a dict or a (dict, dict) pair")
    for part in parts:
        if part is None:
            continue
        if not isinstance(part, dict):
            raise RecordError("a tensor's pickled state must be a dict or a (dict, dict) pair")
        for key in part:
            if not isinstance(key, str):
                raise RecordError("a tensor's pickled state has a key that is not text")
            if key in TENSOR_DATA_ATTRIBUTES:
                raise RecordError(
                    f"a tensor's pickled state sets its {key!r} attribute, which changes the "
                    "tensor torch loads; ckptdiff refuses to guess the result")


def grad_capable(dtype: str) -> bool:
    """True for the torch dtypes a tensor may require gradients in (floating and complex)."""
    return dtype.startswith(("float", "bfloat", "complex"))


def strided(storage: StorageRecord, dtype: str, geometry: tuple[object, ...],
             requires_grad: bool) -> TensorRecord:
    """A strided tensor record from ``(storage_offset, size, stride)``; like torch, it refuses
    ``requires_grad`` on a tensor of integers or bools."""
    if requires_grad and not grad_capable(dtype):
        raise RecordError(f"a {dtype} tensor saved with requires_grad=True, which torch "
                          "refuses to load (only floating and complex tensors take gradients)")
    offset = as_uint(geometry[0], "storage offset")
    shape = as_shape(geometry[1], "size")
    stride = as_stride(geometry[2], len(shape), "stride")
    return TensorRecord(dtype, shape, stride=stride, storage_offset=offset, storage=storage,
                        requires_grad=requires_grad)


def check_arity(args: tuple[object, ...], low: int, high: int, name: str) -> None:
    """Refuse a call with fewer than ``low`` or more than ``high`` arguments."""
    if not low <= len(args) <= high:
        expected = str(low) if low == high else f"{low} to {high}"
        raise RecordError(f"{name} takes {expected} arguments, the pickle passes {len(args)}")


def storage_arg(value: object) -> StorageRecord:
    """``value`` as a storage record."""
    if not isinstance(value, StorageRecord):
        raise RecordError("a tensor's storage argument is not a storage")
    return value


def tensor_arg(value: object, what: str) -> TensorRecord:
    """``value`` as a finished tensor record."""
    if not is_tensor(value):
        raise RecordError(f"{what} is not a tensor")
    return value


def dtype_arg(value: object) -> str:
    """The torch dtype name of a dtype global."""
    if not isinstance(value, DtypeRecord):
        raise RecordError("a dtype argument is not a torch dtype")
    return value.name


def device_arg(value: object) -> str:
    """A device name from a ``torch.device`` record or a location string."""
    if is_named(value, "device"):
        assert isinstance(value, NamedRecord)
        return value.name
    return as_location(value)


def is_named(value: object, kind: str) -> bool:
    """True for a named constant of ``kind`` (``layout``, ``qscheme``, ``device``)."""
    return isinstance(value, NamedRecord) and value.kind == kind
