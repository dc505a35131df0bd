"""Inert stand-ins for the classes a torch.distributed.checkpoint ``.metadata`` pickle names.

``.metadata`` is a pickle of ``torch.distributed.checkpoint.metadata.Metadata``: dataclasses built
by ``NEWOBJ`` with no arguments, then given their fields by ``BUILD`` (a dict, or a tuple for
``TensorProperties``). Each record here is a real class (``NEWOBJ`` requires one) with no
``__dict__``; its ``__setstate__`` takes only the fields torch writes, each type-checked.
:data:`DCP_GLOBALS` is the allow-list addition the DCP reader passes to the restricted unpickler
for this one pickle; nothing in it imports or runs anything.
"""

from __future__ import annotations

from collections.abc import Mapping

from ckptdiff.readers.pickle.rebuild import Recorder
from ckptdiff.readers.pickle.records import DtypeRecord, NamedRecord
from ckptdiff.readers.pickle.validate import RecordError, as_shape, as_text, as_uint

_METADATA = "torch.distributed.checkpoint.metadata"
_MEMORY_FORMATS = ("contiguous_format", "channels_last", "preserve_format")
_ENCODING = "memory_format_encoding"


class DcpRecord:
    """Base of the DCP records: fields set once, by ``BUILD``, from a dict of known names."""

    __slots__ = ()
    fields: tuple[str, ...] = ()
    # torch's classes are dataclasses compared by value, so unhashable (a dict key or set
    # member that is one is a TypeError there); MetadataIndex, frozen, is the one hashable one
    __hash__ = None  # type: ignore[assignment]

    def __setstate__(self, state: object) -> None:
        if isinstance(state, tuple) and len(state) == 2 and state[0] is None:
            state = state[1]  # (None, slots) is how pickle sends state of slotted classes
        if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
            raise RecordError(f"{type(self).__name__} state is not a dict of field names")
        unknown = sorted(set(state) - set(self.fields))
        if unknown:
            raise RecordError(f"{type(self).__name__} has no field {unknown[0][:40]!r}")
        for name, value in state.items():
            object.__setattr__(self, name, self.check(name, value))

    def check(self, name: str, value: object) -> object:
        """The validated value of field ``name``."""
        return value

    def get(self, name: str) -> object:
        """Field ``name``, or None when the pickle did not set it."""
        return getattr(self, name, None)


class ChunkRecord(DcpRecord):
    """``ChunkStorageMetadata``: where one saved chunk sits in the global tensor."""

    __slots__ = fields = ("offsets", "sizes")

    def check(self, name: str, value: object) -> object:
        return as_shape(value, f"chunk {name}")


class PropertiesRecord(DcpRecord):
    """``TensorProperties``: dtype (and layout, memory format, flags we do not need).

    torch >= 2.1 pickles it as a 5-tuple whose memory format is an ``_MEM_FORMAT_ENCODING``,
    and its ``__setstate__`` unpacks exactly that: the dict an older torch wrote (or a memory
    format given any other way) is refused, as torch 2.13's DCP refuses it."""

    __slots__ = fields = ("dtype", "layout", "requires_grad", "memory_format", "pin_memory")

    def __setstate__(self, state: object) -> None:
        if not (isinstance(state, tuple) and len(state) == 5):
            raise RecordError("TensorProperties state is not the 5-tuple torch >= 2.1 writes "
                              "(torch's DCP cannot read an older one)")
        super().__setstate__(dict(zip(self.fields, state, strict=True)))

    def check(self, name: str, value: object) -> object:
        if name == "dtype" and not isinstance(value, DtypeRecord):
            raise RecordError("TensorProperties dtype is not a torch dtype")
        if name in ("requires_grad", "pin_memory") and not isinstance(value, bool):
            raise RecordError(f"TensorProperties {name} is not a bool")
        if name == "memory_format" and not (isinstance(value, NamedRecord)
                                            and value.kind == _ENCODING):
            raise RecordError("TensorProperties memory format is not an _MEM_FORMAT_ENCODING")
        return value


class TensorMetaRecord(DcpRecord):
    """``TensorStorageMetadata``: a tensor's global size, properties and saved chunks."""

    __slots__ = fields = ("properties", "size", "chunks")

    def check(self, name: str, value: object) -> object:
        if name == "size":  # torch compares it to a torch.Size: a list never equals one
            return as_shape(_tuple(value, "tensor size"), "tensor size")
        if name == "properties" and not isinstance(value, PropertiesRecord):
            raise RecordError("TensorStorageMetadata properties are not TensorProperties")
        if name == "chunks" and not (isinstance(value, list)
                                     and all(isinstance(c, ChunkRecord) for c in value)):
            raise RecordError("TensorStorageMetadata chunks are not a list of chunks")
        return value


class BytesMetaRecord(DcpRecord):
    """``BytesStorageMetadata``: a non-tensor value (pickled bytes in a storage file)."""

    __slots__ = ()


class IndexRecord(DcpRecord):
    """``MetadataIndex``: which chunk of which key a storage entry holds."""

    __slots__ = fields = ("fqn", "offset", "index")
    __hash__ = object.__hash__  # type: ignore[assignment]

    def check(self, name: str, value: object) -> object:
        if name == "fqn":
            return _text(value, "MetadataIndex fqn")
        if value is None:
            return None
        if name == "offset":  # a dict key in storage_data: a list is unhashable
            return as_shape(_tuple(value, "MetadataIndex offset"), "MetadataIndex offset")
        return as_uint(value, "MetadataIndex index")


class StorageInfoRecord(DcpRecord):
    """``_StorageInfo``: the file (relative name), byte offset and length of one entry."""

    __slots__ = fields = ("relative_path", "offset", "length", "transform_descriptors")

    def check(self, name: str, value: object) -> object:
        if name == "relative_path":
            return _text(value, "storage file name")
        if name == "transform_descriptors":
            if value is not None and not (isinstance(value, (list, tuple))
                                          and all(isinstance(v, str) for v in value)):
                raise RecordError("_StorageInfo transform_descriptors are not strings")
            return value
        return as_uint(value, f"storage {name}")


class StorageMetaRecord(DcpRecord):
    """``StorageMeta``: checkpoint id, save/load ids, modules (kept, not reported)."""

    __slots__ = fields = ("checkpoint_id", "save_id", "load_id", "modules")


class MetadataRecord(DcpRecord):
    """``Metadata``: the whole ``.metadata`` file."""

    __slots__ = fields = ("state_dict_metadata", "planner_data", "storage_data", "storage_meta",
                          "version")

    def check(self, name: str, value: object) -> object:
        if name == "state_dict_metadata" and not (isinstance(value, dict) and all(
                isinstance(k, str) and isinstance(v, (TensorMetaRecord, BytesMetaRecord))
                for k, v in value.items())):
            raise RecordError("state_dict_metadata is not a dict of storage metadata")
        if name == "storage_data" and value is not None and not (isinstance(value, dict) and all(
                isinstance(k, IndexRecord) and isinstance(v, StorageInfoRecord)
                for k, v in value.items())):
            raise RecordError("storage_data does not map MetadataIndex to _StorageInfo")
        return value


def _text(value: object, what: str) -> str:
    # DCP is Python 3 only: bytes are never text here (torch would look up, join or open them
    # as bytes, and fail), unlike the Python 2 strings torch.save pickles may hold
    if not isinstance(value, str):
        raise RecordError(f"{what} must be text")
    return as_text(value, what)


def _tuple(value: object, what: str) -> object:
    if not isinstance(value, tuple):
        raise RecordError(f"{what} must be a torch.Size")
    return value


def _memory_format(*args: object) -> NamedRecord:
    if len(args) != 1 or type(args[0]) is not int or not 0 <= args[0] < len(_MEMORY_FORMATS):
        raise RecordError("_MEM_FORMAT_ENCODING takes one of 0, 1, 2")
    return NamedRecord(_ENCODING, _MEMORY_FORMATS[args[0]])


def _path_text(*args: object) -> str:
    # StorageMeta.checkpoint_id is a pathlib path, pickled as its parts: kept as text only.
    return "/".join(_text(a, "path part") for a in args)


def _table() -> dict[tuple[str, str], object]:
    classes: dict[str, type[DcpRecord]] = {
        "Metadata": MetadataRecord, "TensorStorageMetadata": TensorMetaRecord,
        "ChunkStorageMetadata": ChunkRecord, "TensorProperties": PropertiesRecord,
        "BytesStorageMetadata": BytesMetaRecord, "MetadataIndex": IndexRecord,
        "StorageMeta": StorageMetaRecord,
    }
    table: dict[tuple[str, str], object] = {(_METADATA, n): c for n, c in classes.items()}
    table[("torch.distributed.checkpoint.filesystem", "_StorageInfo")] = StorageInfoRecord
    table[(_METADATA, "_MEM_FORMAT_ENCODING")] = Recorder(
        f"{_METADATA}._MEM_FORMAT_ENCODING", _memory_format)
    for name in ("PosixPath", "WindowsPath", "PurePosixPath", "PureWindowsPath", "Path"):
        table[("pathlib", name)] = Recorder(f"pathlib.{name}", _path_text)
    return table


DCP_GLOBALS: Mapping[tuple[str, str], object] = _table()
