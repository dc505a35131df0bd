"""Reader registry: built-in readers plus plugins from the ``ckptdiff.readers`` entry-point group.

A reader is chosen by content, never by extension alone: a ``.bin`` may be a torch zip, a legacy
torch pickle or safetensors. Built-ins are imported lazily; a plugin that fails to load is a
warning, never a crash.

One sub-package per format family (``torch``, ``pickle`` — the security boundary —,
``safetensors``, ``tf``, ``keras``, ``gguf``, ``numpy``, ``onnx``); shared here: ``base`` (the
Reader protocol), ``safety``, ``zip_safety``, ``native_sandbox``, ``manifest_json`` (snapshots).

May import: the core and ``sources``; never torch, tensorflow, keras or transformers, h5py only
inside functions. Readers never read weight bytes.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import warnings
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

from ckptdiff.errors import (
    CkptdiffError,
    CorruptFileError,
    MissingDependencyError,
    UnknownFormatError,
)
from ckptdiff.manifest import Manifest
from ckptdiff.readers.base import Location, Reader, has_extension, read_head
from ckptdiff.readers.safety import is_lfs_pointer, lfs_pointer_error, writable_manifest
from ckptdiff.sources.remote import RemotePath, has_protocol

ENTRY_POINT_GROUP = "ckptdiff.readers"

# Sniffers are mutually exclusive (the conformance suite checks it), so the order is by how
# common a format is: readers are imported as they are reached, and a .pth should not pay for
# importing the TensorFlow and Keras readers.
BUILTIN_READERS: tuple[str, ...] = (
    "ckptdiff.readers.safetensors.single:SafetensorsReader",
    "ckptdiff.readers.torch.zip:TorchZipReader",
    "ckptdiff.readers.torch.legacy:TorchLegacyReader",
    "ckptdiff.readers.torch.torchscript:TorchScriptReader",
    "ckptdiff.readers.torch.export:TorchExportReader",
    "ckptdiff.readers.safetensors.index:ShardedSafetensorsReader",
    "ckptdiff.readers.torch.sharded:ShardedTorchReader",
    "ckptdiff.readers.manifest_json:ManifestReader",
    "ckptdiff.readers.tf.checkpoint:TFCheckpointReader",
    "ckptdiff.readers.tf.savedmodel:TFSavedModelReader",
    "ckptdiff.readers.keras.zip:KerasZipReader",
    "ckptdiff.readers.keras.h5:KerasWeightsH5Reader",
    "ckptdiff.readers.keras.h5:KerasH5Reader",
    "ckptdiff.readers.torch.dcp:TorchDcpReader",
    "ckptdiff.readers.gguf.reader:GgufReader",
    "ckptdiff.readers.numpy.npy:NpyReader",
    "ckptdiff.readers.numpy.npz:NpzReader",
    "ckptdiff.readers.onnx.reader:OnnxReader",
)

# Readers to try first by file suffix. Sniffers being exclusive, this changes no result, only
# what gets imported: inspecting a .pth never loads the safetensors reader.
_FIRST_BY_SUFFIX: dict[str, tuple[str, ...]] = dict.fromkeys(
    (".pth", ".pt", ".bin", ".ckpt"),
    ("ckptdiff.readers.torch.zip:TorchZipReader",
     "ckptdiff.readers.torch.legacy:TorchLegacyReader",
     "ckptdiff.readers.torch.torchscript:TorchScriptReader")) | {
    ".onnx": ("ckptdiff.readers.onnx.reader:OnnxReader",),
    ".pt2": ("ckptdiff.readers.torch.export:TorchExportReader",),
    ".gguf": ("ckptdiff.readers.gguf.reader:GgufReader",),
    ".npy": ("ckptdiff.readers.numpy.npy:NpyReader",),
    ".npz": ("ckptdiff.readers.numpy.npz:NpzReader",),
    ".json": ("ckptdiff.readers.manifest_json:ManifestReader",)}


class ReaderEntry(NamedTuple):
    """One registered reader and where it came from."""

    reader: Reader
    origin: str  # "builtin" or the plugin's distribution/entry-point name

    @property
    def available(self) -> bool:
        """True when every optional module the reader needs is installed (checked, not imported)."""
        return all(importlib.util.find_spec(mod) is not None for mod in self.reader.requires)


_builtins: dict[str, ReaderEntry] = {}
_plugins: list[ReaderEntry] | None = None


def _load(spec: str) -> Reader:
    module_name, _, attr = spec.partition(":")
    cls = getattr(importlib.import_module(module_name), attr)
    reader: Reader = cls()
    return reader


def _candidates(path: Location | None = None) -> Iterator[ReaderEntry]:
    """Readers in sniffing order, each imported only when it is reached.

    Built-ins come first (those ``path``'s suffix suggests before the others) and plugins (whose
    discovery scans every installed distribution) only after them, so reading a common format
    pays for neither the other readers nor the scan.
    """
    global _plugins
    first = _FIRST_BY_SUFFIX.get(path.suffix.lower(), ()) if path is not None else ()
    for spec in (*first, *(s for s in BUILTIN_READERS if s not in first)):
        if spec not in _builtins:
            _builtins[spec] = ReaderEntry(_load(spec), "builtin")
        yield _builtins[spec]
    if _plugins is None:
        _plugins = _plugin_entries()
    yield from _plugins


def registered() -> list[ReaderEntry]:
    """Every reader, built-ins first, then plugins (loaded once per process)."""
    return list(_candidates())


def _plugin_entries() -> list[ReaderEntry]:
    from importlib.metadata import entry_points

    found: list[ReaderEntry] = []
    for point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded = point.load()
            reader = loaded() if isinstance(loaded, type) else loaded
            if not isinstance(reader, Reader):
                raise TypeError("it does not implement the ckptdiff Reader protocol")
        except Exception as exc:  # a broken plugin must not break ckptdiff
            warnings.warn(
                f"ckptdiff: skipping reader plugin {point.name!r} ({point.value}): {exc}",
                stacklevel=2,
            )
            continue
        found.append(ReaderEntry(reader, f"plugin:{point.name}"))
    return found


def find_reader(path: Location) -> Reader:
    """The reader that recognises ``path``, or a one-line ``CkptdiffError`` saying why none does."""
    exists = path.exists()
    if exists and path.is_dir() and not any(path.iterdir()):
        raise CkptdiffError(f"{path}: directory is empty")
    head = read_head(path)
    if exists and path.is_file():
        if not head:
            raise CorruptFileError(f"{path}: file is empty (0 bytes)")
        if is_lfs_pointer(head):
            raise lfs_pointer_error(str(path))
    for entry in _candidates(path):
        if entry.reader.sniff(head, path):
            if not entry.available:
                missing = next(m for m in entry.reader.requires
                               if importlib.util.find_spec(m) is None)
                raise MissingDependencyError(
                    missing, entry.reader.extra or "all", f"reading {entry.reader.name} files"
                )
            return entry.reader
    if not exists:
        raise CkptdiffError(f"{path}: no such file or directory")
    expected = [e.reader.name for e in registered() if has_extension(path, e.reader.extensions)]
    if expected:
        raise UnknownFormatError(
            f"{path}: the name suggests {' or '.join(expected)}, but the content is not "
            f"(first bytes {head[:16]!r})"
        )
    raise UnknownFormatError(
        f"{path}: unknown checkpoint format (first bytes {head[:16]!r}); "
        "see 'ckptdiff formats' for what can be read"
    )


def locate(path: str | os.PathLike[str] | RemotePath) -> Location:
    """Where ``path`` points: a local path, a remote URL (``s3://…``, fsspec imported only
    then), or the weights an ``hf:org/name[@revision]`` names in the Hugging Face cache."""
    if isinstance(path, (Path, RemotePath)):
        return path
    text = os.fspath(path)
    if text.startswith("hf:"):
        from ckptdiff.sources.hf_cache import resolve

        return resolve(text)
    if text.startswith("file://"):
        return Path(text[len("file://"):])
    return RemotePath.from_url(text) if has_protocol(text) else Path(text)


def read(path: str | os.PathLike[str] | RemotePath, key: str | None = None) -> Manifest:
    """Read the checkpoint at ``path`` (see :func:`locate`) into a manifest, choosing the
    reader by content. ``key`` picks the entry of a container checkpoint (``state_dict``, ``ema``,
    …). A file that cannot be opened or read is a one-line ``CkptdiffError``."""
    try:
        target = locate(path)
        manifest = writable_manifest(find_reader(target).read(target, key))
    except OSError as exc:
        raise CkptdiffError(f"{path}: {exc.strerror or exc}") from None
    if isinstance(path, str) and path.startswith("hf:"):
        return replace(manifest, path=path)  # not the cache's absolute path
    return manifest


__all__ = ["BUILTIN_READERS", "ENTRY_POINT_GROUP", "Location", "Reader", "ReaderEntry",
           "find_reader", "locate", "read", "registered"]
