"""Reads manifest snapshots (``ckptdiff snapshot`` output) back as sources or targets."""

from __future__ import annotations

from typing import ClassVar

from ckptdiff.errors import CorruptFileError
from ckptdiff.manifest import MANIFEST_SCHEMA, Manifest
from ckptdiff.readers.base import Location

# Snapshots of 100k-key models stay far below this; a larger "snapshot" is not one.
MAX_SNAPSHOT_BYTES = 512 * 1024 * 1024


class ManifestReader:
    """``ckptdiff.manifest/1`` JSON documents."""

    name: ClassVar[str] = "manifest"
    extensions: ClassVar[tuple[str, ...]] = (".manifest.json", ".json")
    description: ClassVar[str] = "ckptdiff manifest snapshot (ckptdiff snapshot)"
    requires: ClassVar[tuple[str, ...]] = ()
    extra: ClassVar[str | None] = None

    def sniff(self, head: bytes, path: Location) -> bool:
        """A JSON object whose ``schema`` member names the manifest schema."""
        text = head.lstrip()
        return text.startswith(b"{") and f'"schema": "{MANIFEST_SCHEMA}"'.encode() in head

    def read(self, path: Location, key: str | None = None) -> Manifest:
        """Load the snapshot; its stored ``path`` and ``format`` are kept."""
        size = path.stat().st_size
        if size > MAX_SNAPSHOT_BYTES:
            raise CorruptFileError(f"{path}: {size:,} bytes is too large for a manifest snapshot")
        data = path.read_bytes()
        manifest = Manifest.from_json(data, str(path))
        metadata = dict(manifest.metadata)
        metadata["bytes_read"] = len(data)
        return Manifest(
            path=manifest.path,
            format=manifest.format,
            tensors=manifest.tensors,
            container_key=manifest.container_key,
            metadata=metadata,
        )
