"""Reader registry: built-in readers plus plugins from the ``ckptdiff.readers`` entry-point group.

A reader is chosen by content, never by extension alone: a ``.bin`` may be a torch zip, a legacy
torch pickle or safetensors. Built-ins are imported lazily; a plugin that fails to load is a
warning, never a crash.
"""

from __future__ import annotations

import importlib
import importlib.util
import warnings
from dataclasses import dataclass
from pathlib import Path

from ckptdiff.errors import (
    CkptdiffError,
    CorruptFileError,
    MissingDependencyError,
    UnknownFormatError,
)
from ckptdiff.manifest import Manifest
from ckptdiff.readers.base import Reader, has_extension, read_head

ENTRY_POINT_GROUP = "ckptdiff.readers"

# Order matters only among readers whose sniffers could both claim a file: specific ones first.
BUILTIN_READERS: tuple[str, ...] = (
    "ckptdiff.readers.manifest_json:ManifestReader",
    "ckptdiff.readers.safetensors:SafetensorsReader",
    "ckptdiff.readers.safetensors_index:ShardedSafetensorsReader",
    "ckptdiff.readers.tf_savedmodel:TFSavedModelReader",
    "ckptdiff.readers.tf_checkpoint:TFCheckpointReader",
    "ckptdiff.readers.keras_zip:KerasZipReader",
    "ckptdiff.readers.keras_h5:KerasWeightsH5Reader",
    "ckptdiff.readers.keras_h5:KerasH5Reader",
    "ckptdiff.readers.torch_zip:TorchZipReader",
    "ckptdiff.readers.torch_legacy:TorchLegacyReader",
)

_LFS_POINTER = b"version https://git-lfs.github.com/spec/v1"


@dataclass(frozen=True)
class ReaderEntry:
    """One registered reader and where it came from."""

    reader: Reader
    origin: str  # "builtin" or the plugin's distribution/entry-point name

    @property
    def available(self) -> bool:
        """True when every optional module the reader needs is installed (checked, not imported)."""
        return all(importlib.util.find_spec(mod) is not None for mod in self.reader.requires)


_registry: list[ReaderEntry] | None = None


def _load(spec: str) -> Reader:
    module_name, _, attr = spec.partition(":")
    cls = getattr(importlib.import_module(module_name), attr)
    reader: Reader = cls()
    return reader


def registered() -> list[ReaderEntry]:
    """Every reader, built-ins first, then plugins (loaded once per process)."""
    global _registry
    if _registry is None:
        entries = [ReaderEntry(_load(spec), "builtin") for spec in BUILTIN_READERS]
        entries.extend(_plugin_entries())
        _registry = entries
    return _registry


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


def find_reader(path: Path) -> Reader:
    """The reader that recognises ``path``, or a one-line ``CkptdiffError`` saying why none does."""
    exists = path.exists()
    if exists and path.is_dir() and not any(path.iterdir()):
        raise CkptdiffError(f"{path}: directory is empty")
    head = read_head(path)
    if exists and path.is_file():
        if not head:
            raise CorruptFileError(f"{path}: file is empty (0 bytes)")
        if head.startswith(_LFS_POINTER):
            raise CorruptFileError(
                f"{path}: is a Git LFS pointer file, not the weights: run 'git lfs pull'"
            )
    for entry in registered():
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


def read(path: str | Path, key: str | None = None) -> Manifest:
    """Read the checkpoint at ``path`` into a manifest, choosing the reader by content."""
    target = Path(path)
    return find_reader(target).read(target, key)


__all__ = ["BUILTIN_READERS", "ENTRY_POINT_GROUP", "Reader", "ReaderEntry", "find_reader",
           "read", "registered"]
