"""Plain-data recorders for the hyper-parameter objects Lightning checkpoints pickle.

Lightning saves ``hyper_parameters`` as an ``argparse.Namespace``, its own ``AttributeDict``,
``pathlib`` paths, and sometimes omegaconf ``DictConfig``/``ListConfig`` objects.
``torch.load(weights_only=True)`` refuses these classes. ckptdiff never runs code, so it reads
them as the data they hold, never resolving the real classes: a Namespace, an AttributeDict or a
``defaultdict`` as a dict, a path as its text, a DictConfig as a dict and a ListConfig as a list
of their values (omegaconf's node metadata is dropped). The names are listed in
``metadata["weights_only_refuses"]``.

``NEWOBJ`` needs a real class, so each record is a class (of ``dict``, ``list`` or ``str``) that a
pickle cannot change: no instance ``__dict__``, and a metaclass refusing attribute assignment.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any

from ckptdiff.readers.pickle.rebuild import Recorder
from ckptdiff.readers.pickle.records import Record, RecordedDict
from ckptdiff.readers.pickle.validate import RecordError, as_text

MAX_PATH_PARTS = 4096


class _Sealed(type):
    """Metaclass of the records: a pickle's BUILD cannot set attributes on the classes."""

    def __setattr__(cls, name: str, value: object) -> None:
        raise RecordError(f"the pickle sets {name[:40]!r} on {cls.__name__}")

    def __delattr__(cls, name: str) -> None:
        raise RecordError(f"the pickle deletes {name[:40]!r} from {cls.__name__}")


def _state_items(state: object, kind: str) -> list[tuple[object, object]]:
    """The attribute items of BUILD state: a dict, or ``(dict | None, slots dict | None)``."""
    parts = state if isinstance(state, tuple) and len(state) == 2 else (state,)
    items: list[tuple[object, object]] = []
    for part in parts:
        if part is None:
            continue
        if not isinstance(part, dict) or not all(isinstance(k, str) for k in part):
            raise RecordError(f"the pickle sets non-attribute state on a {kind}")
        items.extend(part.items())
    return items


class AttributesRecord(dict[object, object], metaclass=_Sealed):
    """``argparse.Namespace``, Lightning's ``AttributeDict`` and omegaconf's metadata: a dict of
    the object's attributes (or, for ``AttributeDict``, its items)."""

    __slots__ = ()

    def __init__(self, *args: object) -> None:
        super().__init__()
        if len(args) > 1 or (args and not isinstance(args[0], dict)):
            raise RecordError(f"{type(self).__name__} takes at most one dict")
        if args:
            assert isinstance(args[0], dict)
            self.update(args[0])

    def __setstate__(self, state: object) -> None:
        self.update(_state_items(state, type(self).__name__))


class NamespaceRecord(AttributesRecord):
    """``argparse.Namespace``."""

    __slots__ = ()


class AttributeDictRecord(AttributesRecord):
    """Lightning's ``AttributeDict`` (a dict subclass)."""

    __slots__ = ()


class OmegaNodeRecord(AttributesRecord):
    """An omegaconf value node (``AnyNode``, ``StringNode`` …) or metadata object."""

    __slots__ = ()


def _plain(value: object) -> object:
    return value.get("_val") if isinstance(value, OmegaNodeRecord) else value


def _content(state: object, kind: str) -> object:
    return dict(_state_items(state, kind)).get("_content")


class OmegaDictRecord(dict[object, object], metaclass=_Sealed):
    """omegaconf ``DictConfig``: a dict of its values (a missing or interpolated config, whose
    content is a string, reads as an empty dict)."""

    __slots__ = ()

    def __setstate__(self, state: object) -> None:
        content = _content(state, "DictConfig")
        if isinstance(content, dict):
            self.update((key, _plain(value)) for key, value in content.items())


class OmegaListRecord(list[object], metaclass=_Sealed):
    """omegaconf ``ListConfig``: a list of its values."""

    __slots__ = ()

    def __setstate__(self, state: object) -> None:
        content = _content(state, "ListConfig")
        if isinstance(content, list):
            self.extend(_plain(value) for value in content)


class _PathRecord(str, metaclass=_Sealed):
    """A ``pathlib`` path, pickled as its parts: kept as its text."""

    __slots__ = ()
    windows = False

    def __new__(cls, *parts: object) -> _PathRecord:
        if len(parts) > MAX_PATH_PARTS:
            raise RecordError(f"a path of more than {MAX_PATH_PARTS} parts")
        texts = [as_text(part, "path part") for part in parts]
        joined = PureWindowsPath(*texts) if cls.windows else PurePosixPath(*texts)
        return super().__new__(cls, str(joined))

    def __setstate__(self, state: object) -> None:
        raise RecordError("the pickle sets state on a path")


class PosixPathRecord(_PathRecord):
    """``pathlib.PosixPath`` / ``PurePosixPath``."""

    __slots__ = ()


class WindowsPathRecord(_PathRecord):
    """``pathlib.WindowsPath`` / ``PureWindowsPath``."""

    __slots__ = ()
    windows = True


class TypeToken(Record):
    """A type named as a value (omegaconf metadata's ``typing.Any``, ``builtins.dict`` …)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


def _defaultdict(*args: object) -> RecordedDict:
    # collections.defaultdict(factory[, items]): the factory is a type token, kept as nothing.
    if len(args) > 2 or (args and not isinstance(args[0], (TypeToken, type(None)))):
        raise RecordError("defaultdict takes a type and optional items")
    record = RecordedDict("defaultdict")
    if len(args) == 2:
        if not isinstance(args[1], dict):
            raise RecordError("defaultdict items must be a dict")
        record.update(args[1])
    return record


_LIGHTNING = ("lightning.fabric.utilities.data", "lightning_fabric.utilities.data",
              "pytorch_lightning.utilities.parsing", "lightning.pytorch.utilities.parsing")
_OMEGA_NODES = ("AnyNode", "StringNode", "IntegerNode", "FloatNode", "BooleanNode", "BytesNode",
                "PathNode", "EnumNode", "InterpolationResultNode")
_TYPES = ("dict", "list", "tuple", "int", "float", "str", "bool", "bytes", "object")


def _table() -> dict[tuple[str, str], object]:
    table: dict[tuple[str, str], Any] = {("argparse", "Namespace"): NamespaceRecord}
    table.update({(module, "AttributeDict"): AttributeDictRecord for module in _LIGHTNING})
    for module in ("pathlib", "pathlib._local"):
        for name in ("PosixPath", "PurePosixPath", "Path"):
            table[(module, name)] = PosixPathRecord
        for name in ("WindowsPath", "PureWindowsPath"):
            table[(module, name)] = WindowsPathRecord
    table[("omegaconf.dictconfig", "DictConfig")] = OmegaDictRecord
    table[("omegaconf.listconfig", "ListConfig")] = OmegaListRecord
    table.update({("omegaconf.nodes", name): OmegaNodeRecord for name in _OMEGA_NODES})
    for name in ("Metadata", "ContainerMetadata"):
        table[("omegaconf.base", name)] = OmegaNodeRecord
    table[("typing", "Any")] = TypeToken("typing.Any")
    table.update({("builtins", name): TypeToken(f"builtins.{name}") for name in _TYPES})
    table[("collections", "defaultdict")] = Recorder("collections.defaultdict", _defaultdict)
    return table


# Read as plain data here, refused by torch.load(weights_only=True): all of them.
HPARAM_GLOBALS: Mapping[tuple[str, str], object] = _table()
