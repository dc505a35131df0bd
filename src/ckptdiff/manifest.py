"""The normalized description of a checkpoint or a model: :class:`TensorInfo` and :class:`Manifest`.

Every reader and every live-model target produces a :class:`Manifest`; the matcher only ever sees
manifests. Both classes are frozen and round-trip through the ``ckptdiff.manifest/1`` JSON schema.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from ckptdiff import collector, jsonlines
from ckptdiff.dtypes import DTYPES, numel
from ckptdiff.errors import CorruptFileError

MANIFEST_SCHEMA = "ckptdiff.manifest/1"
KINDS = ("parameter", "buffer", "optimizer_slot", "other")

# Optional fields: written to JSON only when set, so manifests of simple formats stay small.
_OPTIONAL_FIELDS = ("stride", "storage_offset", "slot_of", "variable_name")


@dataclass(frozen=True)
class TensorInfo:
    """One tensor as stored (or expected): everything but its values.

    ``aliases`` names the other keys sharing this tensor's storage (tied weights). ``slot_of``
    names the variable an optimizer slot belongs to; ``variable_name`` is a framework's own name
    for the variable where it differs from ``key`` (TensorFlow ``dense/kernel``).
    """

    key: str
    shape: tuple[int, ...]
    dtype: str
    device: str | None = "cpu"
    nbytes: int | None = None
    storage: str | None = None
    aliases: tuple[str, ...] = ()
    kind: str = "parameter"
    trainable: bool | None = None
    stride: tuple[int, ...] | None = None
    storage_offset: int | None = None
    slot_of: str | None = None
    variable_name: str | None = None

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ValueError(f"unknown dtype {self.dtype!r} for {self.key!r}")
        if self.kind not in KINDS:
            raise ValueError(f"unknown kind {self.kind!r} for {self.key!r}")

    @property
    def numel(self) -> int:
        """Number of elements (1 for a scalar)."""
        return numel(self.shape)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of this tensor in the manifest schema."""
        out: dict[str, Any] = {
            "key": self.key,
            "shape": list(self.shape),
            "dtype": self.dtype,
            "device": self.device,
            "nbytes": self.nbytes,
            "storage": self.storage,
            "aliases": list(self.aliases),
            "kind": self.kind,
            "trainable": self.trainable,
        }
        for name in _OPTIONAL_FIELDS:
            value = getattr(self, name)
            if value is not None:
                out[name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TensorInfo:
        """Build from a manifest-schema JSON object."""
        get = data.get
        stride = get("stride")
        aliases = get("aliases")
        fields = {
            "key": str(data["key"]),
            "shape": tuple(map(int, data["shape"])),
            "dtype": str(data["dtype"]),
            "device": get("device"),
            "nbytes": get("nbytes"),
            "storage": get("storage"),
            "aliases": tuple(aliases) if aliases else (),
            "kind": str(get("kind", "parameter")),
            "trainable": get("trainable"),
            "stride": None if stride is None else tuple(map(int, stride)),
            "storage_offset": get("storage_offset"),
            "slot_of": get("slot_of"),
            "variable_name": get("variable_name"),
        }
        # A frozen dataclass's __init__ sets each field through object.__setattr__; snapshots
        # of 100,000 tensors load in half the time when the checks of __post_init__ run here
        # and the fields land in one update.
        info = object.__new__(cls)
        info.__dict__.update(fields)
        if fields["dtype"] not in DTYPES or fields["kind"] not in KINDS or cls is not TensorInfo:
            info.__post_init__()  # (says which check fails; a subclass's runs its own)
        return info


@dataclass(frozen=True)
class Manifest:
    """Every tensor of one checkpoint (or one model's expectations), plus format facts."""

    path: str
    format: str
    tensors: tuple[TensorInfo, ...]
    container_key: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def by_key(self) -> Mapping[str, TensorInfo]:
        """Tensors indexed by key."""
        return {t.key: t for t in self.tensors}

    def __len__(self) -> int:
        return len(self.tensors)

    def __iter__(self) -> Iterator[TensorInfo]:
        return iter(self.tensors)

    def __contains__(self, key: object) -> bool:
        return key in self.by_key

    def __getitem__(self, key: str) -> TensorInfo:
        return self.by_key[key]

    def keys(self) -> list[str]:
        """Keys in stored order."""
        return [t.key for t in self.tensors]

    def _repr_html_(self) -> str:
        """Compact HTML for notebooks: the summary line and the folded module tree."""
        from ckptdiff.render.html_notebook import manifest_fragment

        return manifest_fragment(self)

    def __repr__(self) -> str:
        return (
            f"<Manifest {self.format} {self.path!r}: {len(self.tensors)} tensors"
            f"{'' if self.container_key is None else f', container {self.container_key!r}'}>"
        )

    def to_dict(self) -> dict[str, Any]:
        """The ``ckptdiff.manifest/1`` JSON document as a dict."""
        return {
            "schema": MANIFEST_SCHEMA,
            "path": self.path,
            "format": self.format,
            "container_key": self.container_key,
            "tensors": [t.to_dict() for t in self.tensors],
            "metadata": self.metadata,
        }

    def to_json(self, indent: int | None = 2) -> str:
        """Serialize to the manifest JSON schema (stable key order).

        With ``indent``, each tensor is one line: a snapshot's git diff shows one line per
        changed tensor (see :mod:`ckptdiff.jsonlines`).
        """
        return jsonlines.dumps(self.to_dict(), ("tensors",), indent)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], path: str | None = None) -> Manifest:
        """Build from a manifest JSON document; ``CorruptFileError`` when it is not one."""
        if not isinstance(data, Mapping) or data.get("schema") != MANIFEST_SCHEMA:
            raise CorruptFileError(f"{path or 'input'}: not a {MANIFEST_SCHEMA} document")
        try:
            tensors = tuple(map(TensorInfo.from_dict, data["tensors"]))
            return cls(
                path=str(data["path"]),
                format=str(data["format"]),
                tensors=tensors,
                container_key=data.get("container_key"),
                metadata=dict(data.get("metadata") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CorruptFileError(f"{path or 'input'}: invalid manifest: {exc}") from None

    @classmethod
    def from_json(cls, text: str | bytes, path: str | None = None) -> Manifest:
        """Parse a manifest JSON document."""
        with collector.paused():  # a snapshot's 100,000 tensors hold no reference cycle
            try:
                data = json.loads(text)
            except ValueError as exc:
                raise CorruptFileError(f"{path or 'input'}: invalid JSON: {exc}") from None
            return cls.from_dict(data, path)
