"""SavedModel signatures as plain JSON: inputs and outputs with dtype and shape."""

from __future__ import annotations

from typing import Any

from ckptdiff.dtypes import TF_DTYPES
from ckptdiff.readers.tf.proto.saved_model_pb2 import SignatureDef, TensorInfo
from ckptdiff.readers.tf.proto.tensor_bundle_pb2 import TensorShapeProto

# Signatures TensorFlow adds for its own use (initialisers), not a model's endpoints.
INTERNAL_PREFIX = "__saved_model"


def shape_json(shape: TensorShapeProto) -> list[int | None] | None:
    """Dimensions with unknown ones as None; None when even the rank is unknown."""
    if shape.unknown_rank:
        return None
    return [None if dim.size < 0 else int(dim.size) for dim in shape.dim]


def tensor_json(info: TensorInfo) -> dict[str, Any]:
    """One signature input or output."""
    out: dict[str, Any] = {
        "dtype": TF_DTYPES.get(info.dtype, "other"),
        "shape": shape_json(info.tensor_shape),
    }
    encoding = info.WhichOneof("encoding")
    if encoding not in (None, "name"):
        out["encoding"] = encoding
    return out


def signature_json(signature: SignatureDef) -> dict[str, Any]:
    """One signature: inputs and outputs by name (sorted), and its method name."""
    return {
        "inputs": {k: tensor_json(signature.inputs[k]) for k in sorted(signature.inputs)},
        "outputs": {k: tensor_json(signature.outputs[k]) for k in sorted(signature.outputs)},
        "method_name": signature.method_name,
    }


def signatures_json(signatures: dict[str, SignatureDef]) -> dict[str, Any]:
    """Every user-facing signature, sorted by name."""
    return {name: signature_json(signatures[name]) for name in sorted(signatures)
            if not name.startswith(INTERNAL_PREFIX)}
