"""The allow-list: which pickle globals a torch checkpoint may name, and what each becomes.

It mirrors the harmless part of torch's ``weights_only`` allow-list
(``torch/_weights_only_unpickler.py``): dtypes, storage and tensor classes, the ``_rebuild_*``
functions, ``OrderedDict``/``Counter``, ``torch.Size``/``torch.device``, layouts and qschemes,
``_codecs.encode`` (protocol-2 bytes) and a few builtins; plus numpy scalars, dtypes and arrays as
opaque data. Each name maps to ckptdiff's own record or recorder; no real global is ever
imported. A name outside the table is unsafe.
"""

from __future__ import annotations

from collections.abc import Mapping

from ckptdiff.dtypes import TORCH_DTYPES, TORCH_OTHER_BITS, TORCH_STORAGE_CLASSES
from ckptdiff.readers.pickle import numpy_records as torch_numpy
from ckptdiff.readers.pickle import rebuild as torch_rebuild
from ckptdiff.readers.pickle import rebuild_special as torch_rebuild_special
from ckptdiff.readers.pickle.hparams import HPARAM_GLOBALS
from ckptdiff.readers.pickle.rebuild import Recorder, TensorTypeToken
from ckptdiff.readers.pickle.records import DtypeRecord, NamedRecord, RecordedDict, StorageTypeToken
from ckptdiff.readers.pickle.validate import RecordError, as_location, as_shape, as_text

_LAYOUTS = ("strided", "sparse_coo", "sparse_csr", "sparse_csc", "sparse_bsr", "sparse_bsc",
            "_mkldnn", "jagged")
_QSCHEMES = ("per_tensor_affine", "per_tensor_symmetric", "per_channel_affine",
             "per_channel_symmetric", "per_channel_affine_float_qparams")
_TENSOR_CLASSES = {"Double": "float64", "Float": "float32", "Half": "float16",
                   "BFloat16": "bfloat16", "Long": "int64", "Int": "int32", "Short": "int16",
                   "Char": "int8", "Byte": "uint8", "Bool": "bool"}
_NUMPY_MODULES = ("numpy.core.multiarray", "numpy._core.multiarray")

# Allowed here but refused by torch.load(weights_only=True) unless the user allow-lists them:
# numpy values, and the hyper-parameter classes of Lightning checkpoints (torch_hparams).
WEIGHTS_ONLY_REFUSES = frozenset(
    [f"{module}.{name}" for module in _NUMPY_MODULES for name in ("scalar", "_reconstruct")]
    + ["numpy.dtype", "numpy.ndarray"] + [f"{module}.{name}" for module, name in HPARAM_GLOBALS]
)


def _ordered_dict(*args: object) -> RecordedDict:
    return _filled(RecordedDict("OrderedDict"), args)


def _counter(*args: object) -> RecordedDict:
    return _filled(RecordedDict("Counter"), args)


def _filled(record: RecordedDict, args: tuple[object, ...]) -> RecordedDict:
    # Protocol 0/1 pickles pass the items as one argument: a dict or a list of [key, value] pairs.
    if len(args) > 1:
        raise RecordError(f"{record.kind} takes at most one argument")
    if args:
        items = args[0]
        if isinstance(items, dict):
            record.update(items)
        elif isinstance(items, list) and all(
                isinstance(p, (list, tuple)) and len(p) == 2 for p in items):
            record.update((p[0], p[1]) for p in items)
        else:
            raise RecordError(f"{record.kind} items must be a dict or a list of pairs")
    return record


def _torch_size(*args: object) -> tuple[int, ...]:
    if len(args) != 1:
        raise RecordError("torch.Size takes one argument")
    return as_shape(args[0], "torch.Size")


def _torch_device(*args: object) -> NamedRecord:
    if len(args) == 2 and args[1] is not None:
        if type(args[1]) is not int or not 0 <= args[1] < 2**20:
            raise RecordError("torch.device index must be a small non-negative integer")
        return NamedRecord("device", as_location(f"{as_text(args[0], 'device type')}:{args[1]}"))
    if len(args) not in (1, 2):
        raise RecordError("torch.device takes a type and an optional index")
    return NamedRecord("device", as_location(args[0]))


def _get_layout(*args: object) -> NamedRecord:
    # torch looks the name up in a dict of str: bytes (BINBYTES, _codecs.encode) is a KeyError
    name = args[0] if len(args) == 1 and isinstance(args[0], str) else ""
    short = name.removeprefix("torch.")
    if short not in _LAYOUTS:
        raise RecordError(f"unknown layout {name[:40]!r}")
    return NamedRecord("layout", short)


def _codecs_encode(*args: object) -> bytes:
    # Protocol 2 writes bytes as _codecs.encode(latin-1 text, "latin1").
    # The encoding must be text: the real function refuses bytes (b'latin1'), so torch.load does.
    if len(args) != 2 or not isinstance(args[1], str) or args[1].lower() not in (
            "latin1", "latin-1"):
        raise RecordError("_codecs.encode is allowed only as (text, 'latin1')")
    if not isinstance(args[0], str):  # the real function refuses bytes, so torch.load does
        raise RecordError("_codecs.encode of bytes, which fails in torch.load")
    try:
        return as_text(args[0], "encoded text").encode("latin-1")
    except UnicodeEncodeError:
        raise RecordError("_codecs.encode text is not latin-1") from None


def _builtin_set(*args: object) -> set[object]:
    if not args:
        return set()
    items = args[0]
    if len(args) > 1 or not isinstance(items, (list, tuple, set)):
        raise RecordError("set takes one list")
    try:
        return set(items)
    except TypeError:
        raise RecordError("set items must be hashable") from None


def _builtin_bytearray(*args: object) -> bytes:
    if not args:
        return b""
    if len(args) == 1 and isinstance(args[0], bytes):
        return args[0]
    if len(args) == 2:
        return _codecs_encode(*args)
    raise RecordError("bytearray takes bytes or (text, encoding)")


def _builtin_complex(*args: object) -> complex:
    if not 1 <= len(args) <= 2 or not all(type(a) in (int, float) for a in args):
        raise RecordError("complex takes one or two numbers")
    real, imag = (args[0], args[1] if len(args) == 2 else 0)
    assert isinstance(real, (int, float)) and isinstance(imag, (int, float))
    return complex(real, imag)


def _table() -> dict[tuple[str, str], object]:
    table: dict[tuple[str, str], object] = {}

    def call(module: str, name: str, function: object) -> None:
        assert callable(function)
        table[(module, name)] = Recorder(f"{module}.{name}", function)

    call("collections", "OrderedDict", _ordered_dict)
    call("collections", "Counter", _counter)
    call("torch", "Size", _torch_size)
    call("torch", "device", _torch_device)
    call("torch.serialization", "_get_layout", _get_layout)
    call("_codecs", "encode", _codecs_encode)
    call("builtins", "set", _builtin_set)
    call("builtins", "bytearray", _builtin_bytearray)
    call("builtins", "complex", _builtin_complex)
    for recorders in (torch_rebuild, torch_rebuild_special):
        for name in dir(recorders):
            if name.startswith("rebuild_"):
                module = "torch._tensor" if name == "rebuild_from_type_v2" else "torch._utils"
                call(module, f"_{name}", getattr(recorders, name))
    for dtype in (*TORCH_DTYPES, *TORCH_OTHER_BITS):
        table[("torch", dtype)] = DtypeRecord(dtype)
    for storage, dtype in TORCH_STORAGE_CLASSES.items():
        for module in ("torch", "torch.cuda"):
            table[(module, storage)] = StorageTypeToken(storage, dtype)
    for module in ("torch", "torch.storage"):
        table[(module, "UntypedStorage")] = StorageTypeToken("UntypedStorage", "uint8")
    table[("torch.storage", "TypedStorage")] = StorageTypeToken("TypedStorage", None)
    for prefix, dtype in _TENSOR_CLASSES.items():
        for module in ("torch", "torch.cuda", "torch.sparse", "torch.cuda.sparse"):
            table[(module, f"{prefix}Tensor")] = TensorTypeToken(f"{prefix}Tensor", dtype)
    table[("torch", "Tensor")] = TensorTypeToken("Tensor", "float32")
    table[("torch.nn.parameter", "Parameter")] = TensorTypeToken("Parameter", "float32", True)
    for qscheme in _QSCHEMES:
        table[("torch", qscheme)] = NamedRecord("qscheme", qscheme)
    call("numpy", "dtype", torch_numpy.numpy_dtype)
    table[("numpy", "ndarray")] = torch_numpy.NDARRAY_TYPE
    for module in _NUMPY_MODULES:
        call(module, "scalar", torch_numpy.numpy_scalar)
        call(module, "_reconstruct", torch_numpy.numpy_reconstruct)
    for qualified, record in HPARAM_GLOBALS.items():
        table.setdefault(qualified, record)
    return table


ALLOWED_GLOBALS: Mapping[tuple[str, str], object] = _table()

_NJT = ("holds a nested jagged tensor (torch.nested, layout=torch.jagged), which has no single "
        "shape; ckptdiff cannot describe it")
_DTENSOR = ("holds DTensors (torch.distributed.tensor shards); save a full state dict "
            "(torch.distributed.checkpoint.state_dict.get_model_state_dict with "
            "full_state_dict=True) to compare it")
# torch classes that torch itself refuses under weights_only with an explanation, not as unsafe
# code: ckptdiff says why it cannot read them instead of calling them unsafe.
UNSUPPORTED_GLOBALS: Mapping[tuple[str, str], str] = {
    ("torch.nested._internal.nested_tensor", "NestedTensor"): _NJT,
    ("torch.nested._internal.nested_tensor", "_rebuild_njt"): _NJT,
    ("torch._dynamo.decorators", "_DimRange"): _NJT,
    ("torch.distributed.device_mesh", "DeviceMesh"): _DTENSOR,
    ("torch.distributed.tensor._dtensor_spec", "DTensorSpec"): _DTENSOR,
    ("torch.distributed.tensor._dtensor_spec", "TensorMeta"): _DTENSOR,
    ("torch.distributed.tensor", "DTensor"): _DTENSOR,
    ("torch.distributed.tensor.placement_types", "Partial"): _DTENSOR,
    ("torch.distributed.tensor.placement_types", "Replicate"): _DTENSOR,
    ("torch.distributed.tensor.placement_types", "Shard"): _DTENSOR,
}
