"""ONNX ``TensorProto.DataType`` codes (onnx.proto) mapped onto ckptdiff's dtype vocabulary.

Codes without a vocabulary name (float8 ``fnuz`` variants, 4-, 2- and 6-bit types) are ``other``,
with their bits per element kept so ``nbytes`` is still known.
"""

from __future__ import annotations

from collections.abc import Mapping

from ckptdiff.dtypes import DTYPE_BITS

ONNX_DTYPES: Mapping[int, str] = {
    1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64",
    8: "string", 9: "bool", 10: "float16", 11: "float64", 12: "uint32", 13: "uint64",
    14: "complex64", 15: "complex128", 16: "bfloat16", 17: "float8_e4m3fn", 19: "float8_e5m2",
}
# FLOAT8E4M3FNUZ, FLOAT8E5M2FNUZ, UINT4, INT4, FLOAT4E2M1, FLOAT8E8M0, UINT2, INT2, FLOAT6E2M3,
# FLOAT6E3M2.
ONNX_OTHER_BITS: Mapping[int, int] = {18: 8, 20: 8, 21: 4, 22: 4, 23: 4, 24: 8, 25: 2, 26: 2,
                                      27: 6, 28: 6}


def onnx_dtype(code: int) -> str:
    """The vocabulary name of an ONNX data type code (``other`` when it has none)."""
    return ONNX_DTYPES.get(code, "other")


def onnx_bits(code: int) -> int | None:
    """Bits per element of an ONNX data type (``None`` for strings and unknown codes)."""
    name = ONNX_DTYPES.get(code)
    if name is None:
        return ONNX_OTHER_BITS.get(code)
    return DTYPE_BITS[name]


def stored_nbytes(code: int, count: int) -> int | None:
    """Bytes ``count`` elements take packed as ONNX stores them (sub-byte types round up)."""
    bits = onnx_bits(code)
    return None if bits is None else (count * bits + 7) // 8
