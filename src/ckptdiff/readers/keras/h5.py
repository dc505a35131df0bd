"""Readers of Keras HDF5 files: legacy ``.h5`` (``keras-h5``) and Keras 3 ``.weights.h5``
(``keras-weights-h5``). h5py is the only dependency; tensorflow and keras are never imported.

Both are HDF5, so the signature alone cannot tell them apart: the sniffers open the file's top
level with h5py (links listed, never followed). HDF5 files in neither layout are left to other
readers. The legacy reader also claims HDF5 that h5py cannot open (a truncated file gets its
clear error) and, without h5py, every HDF5 file (which gets the one-line install hint).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from ckptdiff.errors import CkptdiffError, UsageError
from ckptdiff.manifest import Manifest, TensorInfo
from ckptdiff.readers.base import Location, open_binary, open_counting
from ckptdiff.readers.keras.hdf5 import Walker, has_hdf5_signature, hdf5_errors, open_hdf5
from ckptdiff.readers.keras.legacy import legacy_manifest_parts
from ckptdiff.readers.keras.saved_layers import saved_layer_tensors
from ckptdiff.readers.keras.v3_h5 import hdf5_layout, saved_layers
from ckptdiff.readers.native_sandbox import isolated_manifest, run_isolated

_Parts = tuple[list[TensorInfo], dict[str, Any]]


def _layout(path: Location) -> str:
    """The Keras layout of the HDF5 file at ``path`` (see ``hdf5_layout``), ``"unreadable"``
    when h5py cannot open it (or the HDF5 library hangs or crashes on it, see
    :mod:`native_sandbox`), ``"no-h5py"`` when h5py is missing, ``"other"`` for other HDF5."""
    if importlib.util.find_spec("h5py") is None:
        return "no-h5py"
    try:
        return run_isolated(lambda: _layout_here(path), str(path), path.name,
                            isinstance(path, Path))
    except CkptdiffError:
        return "unreadable"


def _layout_here(path: Location) -> str:
    try:
        with open_binary(path) as handle, open_hdf5(handle, str(path)) as root:
            return hdf5_layout(root, Walker(str(path))) or "other"
    except Exception:  # a sniffer never raises: the chosen reader reports the problem
        return "unreadable"


def read_hdf5(path: Location, key: str | None, format_name: str,
              parse: Callable[[Any, Walker], _Parts]) -> Manifest:
    """Open ``path`` through a byte-counting file and build the manifest ``parse`` describes."""
    if key is not None:
        raise UsageError(f"{path}: a Keras file has no container entries to pick with key {key!r}")
    counting = open_counting(path)
    try:
        with open_hdf5(counting, str(path)) as root, hdf5_errors(str(path)):
            tensors, metadata = parse(root, Walker(str(path)))
    finally:
        counting.close()
    metadata["bytes_read"] = counting.bytes_read
    return Manifest(path=str(path), format=format_name, tensors=tuple(tensors),
                    metadata=metadata)


def keras3_parts(root: Any, walker: Walker) -> _Parts:
    """Tensors and metadata of a Keras 3 weights file (no config: layers named by attributes)."""
    layers = saved_layers(root, walker)
    unnamed = sum(1 for layer in layers if layer.path and layer.name is None)
    tensors = saved_layer_tensors(layers)
    metadata: dict[str, Any] = {
        "saved_layers": sum(1 for layer in layers if layer.path),
        "positional_keys": sum(1 for t in tensors
                               if t.kind in ("parameter", "buffer") and "/vars/" in f"/{t.key}"),
    }
    if unnamed:
        metadata["layers_without_name_attribute"] = unnamed
    return tensors, metadata


class KerasH5Reader:
    """Legacy Keras HDF5: full models (``model.save("x.h5")``) and tf.keras 2 weight files."""

    name: ClassVar[str] = "keras-h5"
    extensions: ClassVar[tuple[str, ...]] = (".h5", ".hdf5")
    description: ClassVar[str] = "Keras legacy HDF5 model or weights (tf.keras 2, Keras 3 .h5)"
    requires: ClassVar[tuple[str, ...]] = ("h5py",)
    extra: ClassVar[str | None] = "h5"

    def sniff(self, head: bytes, path: Location) -> bool:
        """HDF5 content in the legacy layout; also HDF5 that h5py cannot open (truncated) or
        cannot be opened without h5py, so the error or the install hint comes from here."""
        return has_hdf5_signature(head) and _layout(path) in ("legacy", "unreadable", "no-h5py")

    def read(self, path: Location, key: str | None = None) -> Manifest:
        """Layers, weight names and dataset headers; dataset values are never read."""
        return isolated_manifest(lambda: read_hdf5(path, key, self.name, legacy_manifest_parts),
                                 path, path.name)


class KerasWeightsH5Reader:
    """Keras 3 ``model.save_weights("x.weights.h5")`` files."""

    name: ClassVar[str] = "keras-weights-h5"
    extensions: ClassVar[tuple[str, ...]] = (".weights.h5",)
    description: ClassVar[str] = "Keras 3 weights (.weights.h5)"
    requires: ClassVar[tuple[str, ...]] = ("h5py",)
    extra: ClassVar[str | None] = "h5"

    def sniff(self, head: bytes, path: Location) -> bool:
        """HDF5 content in Keras 3's layout (``vars`` groups, no ``layer_names``)."""
        return has_hdf5_signature(head) and _layout(path) == "keras3"

    def read(self, path: Location, key: str | None = None) -> Manifest:
        """Saved layers and dataset headers, named by the layers' ``name`` attributes."""
        return isolated_manifest(lambda: read_hdf5(path, key, self.name, keras3_parts), path,
                                 path.name)
