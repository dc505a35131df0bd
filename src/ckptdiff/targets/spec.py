"""Resolve ``package.module:attr`` and ``path/to/file.py:attr`` model specs to Python objects."""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from pathlib import Path
from typing import Any

from ckptdiff.errors import UsageError

_SPEC = re.compile(r"^(?P<module>[^:]+):(?P<attr>[A-Za-z_][\w.]*)$")
_MODULE = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")


def is_model_spec(text: str) -> bool:
    """True when ``text`` has the shape of a model spec (and is not an existing path)."""
    match = _SPEC.match(text)
    if match is None or Path(text).exists():
        return False
    module = match["module"]
    return module.endswith(".py") or _MODULE.match(module) is not None


def import_spec(spec: str) -> Any:
    """The object a spec names; ``UsageError`` with one line when it cannot be imported."""
    match = _SPEC.match(spec)
    if match is None:
        raise UsageError(f"{spec}: a model is given as 'package.module:attr' or 'file.py:attr'")
    module_name, attr = match["module"], match["attr"]
    module = _import_file(module_name) if module_name.endswith(".py") else _import(module_name)
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise UsageError(f"{spec}: {module_name} has no attribute {attr!r}") from None
    return obj


def _import(name: str) -> Any:
    # The current directory is where users run ckptdiff from; their package usually lives there.
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        return importlib.import_module(name)
    except Exception as exc:  # user code may raise anything while importing
        raise UsageError(f"cannot import {name}: {type(exc).__name__}: {exc}") from None


def _import_file(filename: str) -> Any:
    path = Path(filename).resolve()
    if not path.is_file():
        raise UsageError(f"{filename}: no such Python file")
    module_name = _file_module_name(path)
    loader_spec = importlib.util.spec_from_file_location(module_name, path)
    if loader_spec is None or loader_spec.loader is None:
        raise UsageError(f"{filename}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[module_name] = module
    # Sibling modules of the file import as they would when running it as a script.
    sys.path.insert(0, str(path.parent))
    try:
        loader_spec.loader.exec_module(module)
    except Exception as exc:  # user code may raise anything while importing
        del sys.modules[module_name]
        raise UsageError(f"cannot import {filename}: {type(exc).__name__}: {exc}") from None
    return module


def _file_module_name(path: Path) -> str:
    """A module name for ``path`` that is the same in every process and on every machine.

    Snapshots record the model class by module name; ``hash()`` is salted per process and an
    absolute path differs between a laptop and CI, so the name comes from the file's stem.
    """
    base = "_ckptdiff_model_" + re.sub(r"\W", "_", path.stem)
    name, number = base, 1
    while name in sys.modules and getattr(sys.modules[name], "__file__", None) != str(path):
        number += 1
        name = f"{base}_{number}"
    return name


def type_names(obj: Any) -> set[str]:
    """Qualified names of every class in ``obj``'s MRO (``obj`` itself when it is a class)."""
    cls = obj if isinstance(obj, type) else type(obj)
    return {f"{c.__module__}.{c.__qualname__}" for c in getattr(cls, "__mro__", ())}
