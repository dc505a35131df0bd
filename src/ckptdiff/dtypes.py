"""One dtype vocabulary for every framework, and the tables that map each format onto it.

Names follow the contract: ``float32``, ``bfloat16``, ``float8_e4m3fn``, ``string`` …; anything a
format can store that has no name here is ``other`` (its size is still known where the format says).
GGML's quantized block types (``q4_0``, ``q6_k``, ``iq2_xs`` …) are names too: their elements have
no size of their own, only whole blocks do, so :data:`BLOCK_DTYPES` gives each block's element
count and bytes and :func:`nbytes` counts in blocks.
"""

from __future__ import annotations

from collections.abc import Mapping

# Bits per element; ``None`` where elements have no fixed size (strings) or are unknown.
DTYPE_BITS: Mapping[str, int | None] = {
    "float64": 64,
    "float32": 32,
    "float16": 16,
    "bfloat16": 16,
    "float8_e4m3fn": 8,
    "float8_e5m2": 8,
    "int64": 64,
    "int32": 32,
    "int16": 16,
    "int8": 8,
    "uint64": 64,
    "uint32": 32,
    "uint16": 16,
    "uint8": 8,
    "bool": 8,
    "complex64": 64,
    "complex128": 128,
    "string": None,
    "other": None,
}

# GGML quantized block types: (elements per block, bytes per block), as ggml's type traits and
# the gguf package's GGML_QUANT_SIZES give them (tests/test_gguf_reader.py compares the two).
BLOCK_DTYPES: Mapping[str, tuple[int, int]] = {
    "q4_0": (32, 18), "q4_1": (32, 20), "q5_0": (32, 22), "q5_1": (32, 24),
    "q8_0": (32, 34), "q8_1": (32, 40),
    "q2_k": (256, 84), "q3_k": (256, 110), "q4_k": (256, 144), "q5_k": (256, 176),
    "q6_k": (256, 210), "q8_k": (256, 292),
    "iq2_xxs": (256, 66), "iq2_xs": (256, 74), "iq3_xxs": (256, 98), "iq1_s": (256, 50),
    "iq4_nl": (32, 18), "iq3_s": (256, 110), "iq2_s": (256, 82), "iq4_xs": (256, 136),
    "iq1_m": (256, 56), "tq1_0": (256, 54), "tq2_0": (256, 66), "mxfp4": (32, 17),
    "nvfp4": (64, 36), "q1_0": (128, 18),
}

DTYPES: frozenset[str] = frozenset(DTYPE_BITS) | frozenset(BLOCK_DTYPES)

# torch dtype attribute names (``torch.<name>``), aliases included.
TORCH_DTYPES: Mapping[str, str] = {
    "float64": "float64", "double": "float64",
    "float32": "float32", "float": "float32",
    "float16": "float16", "half": "float16",
    "bfloat16": "bfloat16",
    "float8_e4m3fn": "float8_e4m3fn", "float8_e5m2": "float8_e5m2",
    "int64": "int64", "long": "int64",
    "int32": "int32", "int": "int32",
    "int16": "int16", "short": "int16",
    "int8": "int8",
    "uint64": "uint64", "uint32": "uint32", "uint16": "uint16", "uint8": "uint8",
    "bool": "bool",
    "complex64": "complex64", "cfloat": "complex64",
    "complex128": "complex128", "cdouble": "complex128",
}

# Bits of torch dtypes that have no name in the vocabulary (they map to ``other``).
TORCH_OTHER_BITS: Mapping[str, int] = {
    "float8_e4m3fnuz": 8, "float8_e5m2fnuz": 8, "float8_e8m0fnu": 8, "float4_e2m1fn_x2": 8,
    "complex32": 32, "chalf": 32, "qint8": 8, "quint8": 8, "qint32": 32, "quint4x2": 8,
    "quint2x4": 8, "bits8": 8, "bits16": 16, "bits1x8": 8, "bits2x4": 8, "bits4x2": 8,
    "int1": 8, "int2": 8, "int3": 8, "int4": 8, "int5": 8, "int6": 8, "int7": 8,
    "uint1": 8, "uint2": 8, "uint3": 8, "uint4": 8, "uint5": 8, "uint6": 8, "uint7": 8,
}

# Legacy typed-storage class names (``torch.FloatStorage``) → torch dtype attribute names.
TORCH_STORAGE_CLASSES: Mapping[str, str] = {
    "DoubleStorage": "float64", "FloatStorage": "float32", "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16", "LongStorage": "int64", "IntStorage": "int32",
    "ShortStorage": "int16", "CharStorage": "int8", "ByteStorage": "uint8",
    "BoolStorage": "bool", "ComplexFloatStorage": "complex64",
    "ComplexDoubleStorage": "complex128", "QInt8Storage": "qint8", "QUInt8Storage": "quint8",
    "QInt32Storage": "qint32", "QUInt4x2Storage": "quint4x2", "QUInt2x4Storage": "quint2x4",
}

# safetensors header dtype codes.
SAFETENSORS_DTYPES: Mapping[str, str] = {
    "F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16",
    "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2",
    "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8",
    "U64": "uint64", "U32": "uint32", "U16": "uint16", "U8": "uint8",
    "BOOL": "bool", "C64": "complex64",
}
# safetensors codes outside the vocabulary, with their bits per element.
SAFETENSORS_OTHER_BITS: Mapping[str, int] = {
    "F8_E8M0": 8, "F8_E4M3FNUZ": 8, "F8_E5M2FNUZ": 8, "F6_E2M3": 6, "F6_E3M2": 6, "F4": 4,
}

# TensorFlow ``DataType`` enum values (types.proto).
TF_DTYPES: Mapping[int, str] = {
    1: "float32", 2: "float64", 3: "int32", 4: "uint8", 5: "int16", 6: "int8", 7: "string",
    8: "complex64", 9: "int64", 10: "bool", 14: "bfloat16", 17: "uint16", 18: "complex128",
    19: "float16", 22: "uint32", 23: "uint64", 24: "float8_e5m2", 25: "float8_e4m3fn",
}

# GGML type codes (``enum ggml_type``) of the types GGUF files hold today; codes ggml removed
# (4, 5: q4_2/q4_3; 31-33: q4_0_4_4 …) have no block size there and are refused like unknown ones.
GGML_TYPES: Mapping[int, str] = {
    0: "float32", 1: "float16", 2: "q4_0", 3: "q4_1", 6: "q5_0", 7: "q5_1", 8: "q8_0",
    9: "q8_1", 10: "q2_k", 11: "q3_k", 12: "q4_k", 13: "q5_k", 14: "q6_k", 15: "q8_k",
    16: "iq2_xxs", 17: "iq2_xs", 18: "iq3_xxs", 19: "iq1_s", 20: "iq4_nl", 21: "iq3_s",
    22: "iq2_s", 23: "iq4_xs", 24: "int8", 25: "int16", 26: "int32", 27: "int64",
    28: "float64", 29: "iq1_m", 30: "bfloat16", 34: "tq1_0", 35: "tq2_0", 39: "mxfp4",
    40: "nvfp4", 41: "q1_0",
}

# numpy dtype names (``np.dtype(x).name``) → vocabulary.
NUMPY_DTYPES: Mapping[str, str] = {
    name: name
    for name in (
        "float64", "float32", "float16", "int64", "int32", "int16", "int8",
        "uint64", "uint32", "uint16", "uint8", "bool", "complex64", "complex128",
    )
} | {"bfloat16": "bfloat16", "float8_e4m3fn": "float8_e4m3fn", "float8_e5m2": "float8_e5m2"}


def itemsize(dtype: str) -> int | None:
    """Bytes per element of a vocabulary dtype, or ``None`` when it has no fixed size (strings,
    ``other``, and GGML block types, whose elements share their block's bytes)."""
    bits = DTYPE_BITS.get(dtype)
    return None if bits is None else bits // 8


def nbytes(dtype: str, shape: tuple[int, ...]) -> int | None:
    """Bytes a dense tensor of ``dtype`` and ``shape`` occupies, or ``None`` when unknowable.

    A block type counts whole blocks along the last dimension, as ggml stores rows (its row
    length must be a multiple of the block size; a shape where it is not gives ``None``).
    """
    block = BLOCK_DTYPES.get(dtype)
    if block is not None:
        per_block, block_bytes = block
        row = shape[-1] if shape else 1
        if row % per_block:
            return None
        return numel(shape) // per_block * block_bytes
    size = itemsize(dtype)
    if size is None:
        return None
    return numel(shape) * size


def numel(shape: tuple[int, ...]) -> int:
    """Number of elements of ``shape`` (1 for a scalar)."""
    count = 1
    for dim in shape:
        count *= dim
    return count


def is_numeric(dtype: str) -> bool:
    """True for dtypes ``load_state_dict``-style copies can cast between."""
    return dtype not in ("string", "other")


def can_convert(source: str, target: str) -> bool:
    """True when a value of ``source`` dtype can be copied into a tensor of ``target`` dtype."""
    if source == target:
        return True
    return is_numeric(source) and is_numeric(target)
