"""Recorders for torch's rebuild functions of tensors without one plain strided storage:
sparse (COO and compressed layouts), nested, wrapper subclasses, and device tensors saved through
a CPU copy (XLA, MTIA …)."""

from __future__ import annotations

from ckptdiff.readers.pickle.rebuild import (
    TensorTypeToken,
    check_arity,
    device_arg,
    dtype_arg,
    is_named,
    tensor_arg,
)
from ckptdiff.readers.pickle.records import NamedRecord, TensorRecord
from ckptdiff.readers.pickle.validate import (
    RecordError,
    UnsupportedRecordError,
    as_bool,
    as_shape,
    as_stride,
    as_uint,
    contiguous_stride,
)


def rebuild_sparse_tensor(*args: object) -> TensorRecord:
    """``_rebuild_sparse_tensor(layout, data)``: COO or compressed (CSR/CSC/BSR/BSC) sparse.

    The shape and dtype are the sparse tensor's; ``nbytes`` is what its index and value tensors
    store, and there is no single storage (``storage`` is ``None``).
    """
    check_arity(args, 2, 2, "_rebuild_sparse_tensor")
    layout, data = args
    if not is_named(layout, "layout") or not isinstance(data, tuple) or not 3 <= len(data) <= 4:
        raise RecordError("_rebuild_sparse_tensor needs (layout, (tensors..., size))")
    assert isinstance(layout, NamedRecord)
    if layout.name == "sparse_coo":
        parts, size = data[:2], data[2]
    elif layout.name in ("sparse_csr", "sparse_csc", "sparse_bsr", "sparse_bsc") and len(data) == 4:
        parts, size = data[:3], data[3]
    else:
        raise RecordError(f"_rebuild_sparse_tensor: unexpected layout {layout.name!r}")
    tensors = [tensor_arg(part, "sparse component") for part in parts]
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
    check_arity(args, 8, 8, "_rebuild_wrapper_subclass")
    if not isinstance(args[0], TensorTypeToken) or not is_named(args[5], "layout"):
        raise RecordError("_rebuild_wrapper_subclass needs a tensor class and a layout")
    shape = as_shape(args[2], "size")
    return TensorRecord(dtype_arg(args[1]), shape, stride=as_stride(args[3], len(shape), "stride"),
                        storage_offset=as_uint(args[4], "storage offset"), storage=None,
                        requires_grad=as_bool(args[7], "requires_grad"), device=device_arg(args[6]))


def rebuild_device_tensor_from_cpu_tensor(*args: object) -> TensorRecord:
    """``_rebuild_device_tensor_from_cpu_tensor(data, dtype, device, requires_grad)`` (XLA …):
    a CPU copy in the file, moved to ``device`` on load, so the result has no file storage."""
    check_arity(args, 4, 4, "_rebuild_device_tensor_from_cpu_tensor")
    shape = tensor_arg(args[0], "device tensor data").shape
    return _moved(shape, args[1:])


def rebuild_device_tensor_from_numpy(*args: object) -> TensorRecord:
    """``_rebuild_device_tensor_from_numpy(array, dtype, device, requires_grad)``."""
    check_arity(args, 4, 4, "_rebuild_device_tensor_from_numpy")
    shape = getattr(args[0], "shape", None)
    if not isinstance(shape, tuple):
        raise RecordError("_rebuild_device_tensor_from_numpy needs a numpy array")
    return _moved(shape, args[1:])


def _moved(shape: tuple[int, ...], rest: tuple[object, ...]) -> TensorRecord:
    return TensorRecord(dtype_arg(rest[0]), shape, stride=contiguous_stride(shape),
                        storage_offset=0, storage=None,
                        requires_grad=as_bool(rest[2], "requires_grad"), device=device_arg(rest[1]))
