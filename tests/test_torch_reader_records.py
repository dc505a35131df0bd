"""The allow-listed recorders one by one, through hand-made protocol-2 pickles (no torch needed)."""

from __future__ import annotations

import struct

import pytest

from ckptdiff.errors import CorruptFileError
from ckptdiff.readers.pickle.numpy_records import OpaqueRecord
from ckptdiff.readers.pickle.records import NamedRecord, RecordedDict, TensorRecord
from ckptdiff.readers.pickle.unpickler import LoadSession, load_pickle

MARK, TUPLE, TUPLE3, REDUCE, BUILD = b"(", b"t", b"\x87", b"R", b"b"
EMPTY_TUPLE, EMPTY_LIST, APPENDS, BINPERSID, NONE = b")", b"]", b"e", b"Q", b"N"


def glob(module: str, name: str) -> bytes:
    return b"c" + f"{module}\n{name}\n".encode()


def text(value: str) -> bytes:
    raw = value.encode()
    return b"X" + len(raw).to_bytes(4, "little") + raw


def integer(value: int) -> bytes:
    return b"J" + value.to_bytes(4, "little", signed=True)


def floating(value: float) -> bytes:
    return b"G" + struct.pack(">d", value)


def call(module: str, name: str, *args: bytes) -> bytes:
    return glob(module, name) + MARK + b"".join(args) + TUPLE + REDUCE


def ints(*values: int) -> bytes:
    return MARK + b"".join(integer(v) for v in values) + TUPLE


def load(*parts: bytes, legacy: bool = False) -> object:
    data = b"\x80\x02" + b"".join(parts) + b"."
    return load_pickle(data, LoadSession(legacy=legacy), "f.pt", "data.pkl")


def storage(key: str, numel: int, cls: str = "FloatStorage", legacy: bool = False) -> bytes:
    view = NONE if legacy else b""
    return (MARK + text("storage") + glob("torch", cls) + text(key) + text("cpu")
            + integer(numel) + view + TUPLE + BINPERSID)


def test_ordered_dict_counter_set_complex_bytes() -> None:
    pairs = EMPTY_LIST + MARK + MARK + text("a") + integer(1) + b"l" + APPENDS
    ordered = load(call("collections", "OrderedDict", pairs))
    assert isinstance(ordered, RecordedDict) and ordered == {"a": 1}
    assert load(call("collections", "Counter")) == {}
    assert load(call("builtins", "set", EMPTY_LIST + MARK + integer(2) + APPENDS)) == {2}
    assert load(call("builtins", "complex", floating(1.0), floating(2.0))) == 1 + 2j
    assert load(call("_codecs", "encode", text("\xff\x00"), text("latin1"))) == b"\xff\x00"
    assert load(call("builtins", "bytearray", text("ab"), text("latin-1"))) == b"ab"


@pytest.mark.parametrize(("args", "device"), [
    (text("cpu"), "cpu"), (text("cuda") + integer(1), "cuda:1"), (text("cuda:2"), "cuda:2"),
    (text("cuda") + NONE, "cuda:0"), (text("mps"), "mps")])
def test_torch_device(args: bytes, device: str) -> None:
    record = load(call("torch", "device", args))
    assert isinstance(record, NamedRecord) and (record.kind, record.name) == ("device", device)


def test_torch_size_and_layout() -> None:
    assert load(call("torch", "Size", ints(2, 3))) == (2, 3)
    layout = load(call("torch.serialization", "_get_layout", text("torch.sparse_csr")))
    assert isinstance(layout, NamedRecord) and layout.name == "sparse_csr"


def test_numpy_scalar_dtype_and_array() -> None:
    dtype = (call("numpy", "dtype", text("f8"), b"\x89", b"\x88")
             + MARK + integer(3) + text("<") + NONE * 3 + integer(-1) * 2 + integer(0) + TUPLE
             + BUILD)
    scalar = load(call("numpy.core.multiarray", "scalar", dtype,
                       call("_codecs", "encode", text(struct.pack("<d", 0.5).decode("latin-1")),
                            text("latin1"))))
    assert isinstance(scalar, OpaqueRecord) and scalar.scalar_value() == 0.5
    array = load(call("numpy._core.multiarray", "_reconstruct", glob("numpy", "ndarray"),
                      ints(0), call("_codecs", "encode", text("b"), text("latin1")))
                 + MARK + integer(1) + ints(4, 5) + dtype + b"\x89" + text("") + TUPLE + BUILD)
    assert isinstance(array, OpaqueRecord) and array.shape == (4, 5)
    assert array.dtype == "float64"


def test_pre_1_0_tensor_class_with_build_state() -> None:
    state = MARK + storage("k", 6, legacy=True) + integer(0) + ints(2, 3) + ints(3, 1) + TUPLE
    tensor = load(glob("torch", "FloatTensor") + EMPTY_TUPLE + REDUCE + state + BUILD,
                  legacy=True)
    assert isinstance(tensor, TensorRecord) and (tensor.shape, tensor.stride) == ((2, 3), (3, 1))
    too_big = MARK + storage("k", 5, legacy=True) + integer(0) + ints(2, 3) + ints(3, 1) + TUPLE
    with pytest.raises(CorruptFileError, match="needs 24 bytes of storage k"):
        load(glob("torch", "FloatTensor") + EMPTY_TUPLE + REDUCE + too_big + BUILD, legacy=True)
    built_twice = glob("torch", "FloatTensor") + EMPTY_TUPLE + REDUCE + state + BUILD + state
    with pytest.raises(CorruptFileError, match="already built"):
        load(built_twice + BUILD, legacy=True)


def test_parameter_class_call_and_legacy_views() -> None:
    tensor = call("torch._utils", "_rebuild_tensor", storage("k", 4), integer(0), ints(4), ints(1))
    param = load(call("torch.nn.parameter", "Parameter", tensor, b"\x89"))
    assert isinstance(param, TensorRecord) and param.parameter and not param.requires_grad
    view = (MARK + text("storage") + glob("torch", "IntStorage") + text("root") + text("cpu")
            + integer(10) + text("view") + integer(2) + integer(4) + TUPLE3 + TUPLE + BINPERSID)
    viewed = load(call("torch._utils", "_rebuild_tensor", view, integer(0), ints(4), ints(1)),
                  legacy=True)
    assert isinstance(viewed, TensorRecord) and viewed.storage is not None
    assert (viewed.storage.root, viewed.storage.base_offset) == ("root", 2)


def test_wrapper_subclass_and_device_tensors_have_no_file_storage() -> None:
    wrapper = load(call("torch._utils", "_rebuild_wrapper_subclass", glob("torch", "Tensor"),
                        glob("torch", "float16"), ints(2, 3), ints(3, 1), integer(0),
                        call("torch.serialization", "_get_layout", text("torch.strided")),
                        call("torch", "device", text("cuda"), integer(0)), b"\x89"))
    assert isinstance(wrapper, TensorRecord) and wrapper.storage is None
    assert (wrapper.dtype, wrapper.shape, wrapper.device) == ("float16", (2, 3), "cuda:0")
    cpu_copy = call("torch._utils", "_rebuild_tensor", storage("k", 6), integer(0), ints(2, 3),
                    ints(3, 1))
    moved = load(call("torch._utils", "_rebuild_device_tensor_from_cpu_tensor", cpu_copy,
                      glob("torch", "bfloat16"), text("xla:0"), b"\x88"))
    assert isinstance(moved, TensorRecord) and moved.storage is None
    assert (moved.dtype, moved.shape, moved.stride, moved.device) == (
        "bfloat16", (2, 3), (3, 1), "xla:0")
    assert moved.requires_grad and moved.nbytes == 12


@pytest.mark.parametrize("body", [
    call("torch", "device", text("cuda"), text("x")),
    call("torch", "device", text("not a device!")),
    call("torch.serialization", "_get_layout", text("torch.weird")),
    call("_codecs", "encode", text("x"), text("rot13")),
    call("builtins", "complex", text("1")),
    call("collections", "OrderedDict", integer(3)),
    call("torch._utils", "_rebuild_tensor", storage("k", 4), integer(-1), ints(4), ints(1)),
    call("torch._utils", "_rebuild_tensor", storage("../../k\n", 4), integer(0), ints(4), ints(1)),
    call("torch._utils", "_rebuild_meta_tensor_no_storage", text("float"), ints(2), ints(1),
         b"\x89"),
])
def test_nonsense_arguments_are_corrupt(body: bytes) -> None:
    with pytest.raises(CorruptFileError, match="^f.pt: "):
        load(body)
