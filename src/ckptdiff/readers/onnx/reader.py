"""The ``onnx`` reader: an ONNX model's initializers as a manifest, by its wire format alone.

What the manifest says, and why:

- one tensor per initializer (graph field ``initializer``, and ``sparse_initializer`` with its
  dense ``dims``), keyed by its name, in file order; ``device`` is ``null`` (ONNX stores none);
  ``trainable`` is ``null``.
- ``kind`` is ``parameter`` (ONNX does not tell weights from constants; ``other`` would read as
  training bookkeeping). The exporters' anonymous names (``onnx::Conv_18`` from torch's
  TorchScript-based exporter, ``val_12`` from the dynamo exporter: folded constants and fused
  weights that no module owns) are listed in ``metadata["anonymous"]``, and a diff says why they
  pair with nothing (:mod:`ckptdiff.diffing.exported`).
- ``storage``: ``null`` for inline data; for external data, the file the ``external_data``
  entries name (stat-ed, never opened), with ``offset``/``length`` kept in
  ``metadata["external_data"]``. A location outside the model's folder is reported, not followed.
- ``metadata``: ``ir_version``, ``producer``, ``opsets``, graph ``inputs``/``outputs`` (name,
  dtype, shape with symbolic dimensions by name), ``metadata_props``, and ``notes`` on the
  exporter conventions that matter when diffing against a torch model.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar

from ckptdiff.dtypes import numel
from ckptdiff.errors import CkptdiffError, CorruptFileError
from ckptdiff.manifest import Manifest, TensorInfo
from ckptdiff.readers.base import Location, open_counting
from ckptdiff.readers.onnx.dtypes import onnx_dtype, stored_nbytes
from ckptdiff.readers.onnx.proto import Initializer, OnnxModel, read_model
from ckptdiff.readers.onnx.sniff import looks_like_onnx

# torch.onnx's TorchScript exporter names folded or fused tensors ``onnx::<Op>_<n>``; the dynamo
# exporter names its constants ``val_<n>``.
ANONYMOUS = re.compile(r"onnx::.*|val_\d+")
NOTES = (
    "initializers are named as the exporter left them: a Linear exported as MatMul stores its "
    "weight transposed ([in, out]); folded or fused tensors (BatchNorm into Conv) get anonymous "
    "names (onnx::*, val_*) that pair with no module key and are left unpaired",
)


class OnnxReader:
    """ONNX models (``.onnx``), initializers only; external data is referenced, not read."""

    name: ClassVar[str] = "onnx"
    extensions: ClassVar[tuple[str, ...]] = (".onnx",)
    description: ClassVar[str] = "ONNX model: initializers, graph inputs/outputs (header walk)"
    requires: ClassVar[tuple[str, ...]] = ()
    extra: ClassVar[str | None] = None

    def sniff(self, head: bytes, path: Location) -> bool:
        """A protobuf that starts like a ``ModelProto`` (see :mod:`.sniff`)."""
        return looks_like_onnx(head, path)

    def read(self, path: Location, key: str | None = None) -> Manifest:
        """Walk the model; ``key`` is refused (an ONNX model holds one graph of initializers)."""
        if key is not None:
            raise CkptdiffError(f"{path}: an ONNX model has no containers; drop --key {key!r}")
        raw = open_counting(path)
        with raw:
            model = read_model(raw, str(path))
            bytes_read = raw.bytes_read
        tensors = tuple(_info(t, str(path)) for t in model.initializers)
        seen: set[str] = set()
        for tensor in tensors:
            if tensor.key in seen:
                raise CorruptFileError(f"{path}: initializer {tensor.key!r} appears twice")
            seen.add(tensor.key)
        metadata = _metadata(model, path)
        metadata["bytes_read"] = bytes_read
        return Manifest(path=str(path), format=self.name, tensors=tensors, container_key=None,
                        metadata=metadata)


def _info(tensor: Initializer, path: str) -> TensorInfo:
    nbytes = stored_nbytes(tensor.data_type, numel(tensor.dims))
    if tensor.data_type == 0:
        raise CorruptFileError(f"{path}: initializer {tensor.name!r} has no data type")
    if tensor.raw_bytes is not None and nbytes is not None and tensor.raw_bytes != nbytes:
        raise CorruptFileError(
            f"{path}: initializer {tensor.name!r} ({list(tensor.dims)}, "
            f"{onnx_dtype(tensor.data_type)}) holds {tensor.raw_bytes:,} bytes of raw_data, "
            f"not {nbytes:,}: damaged file?")
    storage = tensor.external.get("location") if tensor.external_location else None
    if tensor.sparse:
        nbytes = tensor.sparse_nbytes
    return TensorInfo(key=tensor.name, shape=tensor.dims, dtype=onnx_dtype(tensor.data_type),
                      device=None, nbytes=nbytes, storage=storage,
                      kind="parameter", trainable=None)


def _metadata(model: OnnxModel, path: Location) -> dict[str, object]:
    producer = " ".join(p for p in (model.producer_name, model.producer_version) if p)
    meta: dict[str, object] = {
        "ir_version": model.ir_version, "producer": producer, "opsets": dict(model.opsets),
        "graph": model.graph_name,
        "inputs": [v.to_dict() for v in model.inputs],
        "outputs": [v.to_dict() for v in model.outputs],
    }
    if model.domain:
        meta["domain"] = model.domain
    if model.model_version:
        meta["model_version"] = model.model_version
    if model.metadata_props:
        meta["metadata_props"] = dict(model.metadata_props)
    anonymous = [t.name for t in model.initializers if ANONYMOUS.fullmatch(t.name)]
    if anonymous:
        meta["anonymous"] = anonymous
    sparse = [t.name for t in model.initializers if t.sparse]
    if sparse:
        meta["sparse"] = sparse
    external = {t.name: dict(t.external) for t in model.initializers if t.external_location}
    if external:
        meta["external_data"] = external
        warnings = _external_warnings(external, path)
        if warnings:
            meta["warnings"] = warnings
    meta["notes"] = list(NOTES)
    return meta


def _external_warnings(external: dict[str, dict[str, str]], path: Location) -> list[str]:
    """Files named by ``external_data`` that are missing, or outside the model's folder."""
    if not isinstance(path, Path):
        return []  # remote: not checked, one request per file would be a download's cost
    folder = path.resolve().parent
    out: list[str] = []
    for location in sorted({entry.get("location", "") for entry in external.values()}):
        try:
            target = (folder / location).resolve()
        except (ValueError, OSError):  # a NUL byte, a loop of links …: never a file onnx opens
            out.append(f"external data location {location[:200]!r} is not a usable path: "
                       "the model will not load")
            continue
        if not location or not target.is_relative_to(folder):
            out.append(f"external data location {location!r} is outside the model's folder: "
                       "onnx refuses it, ckptdiff did not follow it")
        elif not target.is_file():
            out.append(f"external data file {location!r} is missing: the model will not load")
    return out
