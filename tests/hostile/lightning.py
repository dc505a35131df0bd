"""Lightning-shaped hyper-parameters without Lightning or omegaconf installed.

Stand-in classes carry the real ``__module__``/``__qualname__`` and the same pickled state as the
real ones (omegaconf 2.x: a container's ``__dict__`` of ``_metadata``, ``_parent`` and
``_content``; a node's of ``_metadata``, ``_parent`` and ``_val``), so ``pickle`` writes the
globals and opcodes Lightning's checkpoints hold. They are registered in ``sys.modules`` only
while a checkpoint is written (:func:`fake_modules`).
"""

from __future__ import annotations

import sys
import types
import typing
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

OMEGA_GLOBALS = {"builtins.dict", "builtins.list", "builtins.int", "collections.defaultdict",
                 "omegaconf.base.ContainerMetadata", "omegaconf.base.Metadata",
                 "omegaconf.dictconfig.DictConfig", "omegaconf.listconfig.ListConfig",
                 "omegaconf.nodes.AnyNode", "typing.Any"}


class AttributeDict(dict[str, Any]):
    """Lightning's AttributeDict: a dict whose items are also attributes."""

    def __getattr__(self, key: str) -> Any:
        return self[key]

    def __setattr__(self, key: str, value: Any) -> None:
        self[key] = value


class Metadata:
    """omegaconf.base.Metadata (a dataclass in omegaconf)."""

    def __init__(self, ref_type: Any, object_type: Any, key: Any, **extra: Any) -> None:
        self.ref_type = ref_type
        self.object_type = object_type
        self.optional = True
        self.key = key
        self.flags: dict[str, bool] = {}
        self.flags_root = False
        self.resolver_cache: defaultdict[str, dict[str, Any]] = defaultdict(dict)
        self.__dict__.update(extra)


class ContainerMetadata(Metadata):
    """omegaconf.base.ContainerMetadata: adds key_type and element_type."""


class AnyNode:
    """omegaconf.nodes.AnyNode: one value."""

    def __init__(self, value: Any, key: Any, parent: Any) -> None:
        self._metadata = Metadata(typing.Any, None, key)
        self._parent = parent
        self._val = value


class DictConfig:
    """omegaconf.dictconfig.DictConfig built from a plain dict."""

    def __init__(self, content: dict[str, Any], key: Any = None, parent: Any = None) -> None:
        self._metadata = ContainerMetadata(typing.Any, dict, key, key_type=typing.Any,
                                           element_type=typing.Any)
        self._parent = parent
        self._content = {k: _node(v, k, self) for k, v in content.items()}


class ListConfig:
    """omegaconf.listconfig.ListConfig built from a plain list."""

    def __init__(self, content: list[Any], key: Any = None, parent: Any = None) -> None:
        self._metadata = ContainerMetadata(typing.Any, list, key, key_type=int,
                                           element_type=typing.Any)
        self._parent = parent
        self._content = [_node(v, i, self) for i, v in enumerate(content)]


def _node(value: Any, key: Any, parent: Any) -> Any:
    if isinstance(value, dict):
        return DictConfig(value, key, parent)
    if isinstance(value, list):
        return ListConfig(value, key, parent)
    return AnyNode(value, key, parent)


_CLASSES: dict[str, list[type]] = {
    "lightning.fabric.utilities.data": [AttributeDict],
    "omegaconf.base": [Metadata, ContainerMetadata],
    "omegaconf.nodes": [AnyNode],
    "omegaconf.dictconfig": [DictConfig],
    "omegaconf.listconfig": [ListConfig],
}


@contextmanager
def fake_modules(module_of_attribute_dict: str = "lightning.fabric.utilities.data",
                 ) -> Iterator[None]:
    """Make the stand-ins importable under their real names while a pickle is written."""
    added: list[str] = []
    homes = {cls: cls.__module__ for classes in _CLASSES.values() for cls in classes}
    layout = dict(_CLASSES)
    layout[module_of_attribute_dict] = layout.pop("lightning.fabric.utilities.data")
    try:
        for module_name, classes in layout.items():
            parts = module_name.split(".")
            for depth in range(1, len(parts) + 1):
                name = ".".join(parts[:depth])
                if name not in sys.modules:
                    sys.modules[name] = types.ModuleType(name)
                    added.append(name)
            for cls in classes:
                cls.__module__ = module_name
                setattr(sys.modules[module_name], cls.__qualname__, cls)
        yield
    finally:
        for name in reversed(added):
            del sys.modules[name]
        for cls, home in homes.items():
            cls.__module__ = home
