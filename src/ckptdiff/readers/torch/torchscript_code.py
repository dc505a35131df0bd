"""What a TorchScript archive's ``code/`` says about each scripted class, read as text.

``torch.jit.save`` writes every class of the module tree as Python-like source under
``<root>/code/__torch__/<module path>.py``; a module class starts ``class Linear(Module):`` and
declares which of its attributes are parameters and buffers::

    class Linear(Module):
      __parameters__ = ["weight", "bias", ]
      __buffers__ = []

That is what ``state_dict()`` keys follow, and it is in no pickle. The source is only scanned for
those two lines (their lists parsed by ``ast.literal_eval``, which evaluates literals and nothing
else): it is never compiled or run.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from dataclasses import dataclass

from ckptdiff.errors import CorruptFileError

_CLASS = re.compile(r"^class ([A-Za-z_][A-Za-z0-9_]*)(\(([^)]*)\))?:", re.MULTILINE)
_DECLARED = re.compile(r"^  (__parameters__|__buffers__) = (\[[^\n]*\])$", re.MULTILINE)
MAX_CODE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class ScriptClass:
    """One scripted class: whether it is a module, and its parameter and buffer names."""

    qualified_name: str
    is_module: bool
    parameters: tuple[str, ...] = ()
    buffers: tuple[str, ...] = ()


def code_member(root: str, qualified_name: str) -> str:
    """The archive member whose source declares ``qualified_name`` (``__torch__.a.b.Name`` is in
    ``<root>/code/__torch__/a/b.py``; ``__torch__.Name`` in ``<root>/code/__torch__.py``)."""
    module = qualified_name.rpartition(".")[0]
    return f"{root}/code/{module.replace('.', '/')}.py"


def parse_classes(source: str, module: str, path: str, member: str) -> dict[str, ScriptClass]:
    """Every class declared in one code file, by qualified name (``module.Name``)."""
    starts = list(_CLASS.finditer(source))
    found: dict[str, ScriptClass] = {}
    for index, match in enumerate(starts):
        end = starts[index + 1].start() if index + 1 < len(starts) else len(source)
        body = source[match.end():end]
        declared: dict[str, tuple[str, ...]] = {}
        for line in _DECLARED.finditer(body):
            declared[line.group(1)] = _names(line.group(2), path, member)
        qualified = f"{module}.{match.group(1)}"
        found[qualified] = ScriptClass(qualified, (match.group(3) or "").strip() == "Module",
                                       declared.get("__parameters__", ()),
                                       declared.get("__buffers__", ()))
    return found


def _names(literal: str, path: str, member: str) -> tuple[str, ...]:
    try:
        value = ast.literal_eval(literal)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        value = None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise CorruptFileError(f"{path}: {member} declares parameters or buffers that are not a "
                               "list of names: damaged archive?")
    return tuple(value)


class ScriptClassTable:
    """Scripted classes by qualified name, each code file read (by ``read``) on first use."""

    def __init__(self, root: str, members: set[str], read: Callable[[str], bytes],
                 path: str) -> None:
        self._root, self._members, self._read, self._path = root, members, read, path
        self._classes: dict[str, ScriptClass] = {}
        self._files: set[str] = set()
        self.modules_seen = 0

    def get(self, qualified_name: str) -> ScriptClass:
        """The class, or a one-line error when the archive has no code for it."""
        member = code_member(self._root, qualified_name)
        if member not in self._files and member in self._members:
            self._files.add(member)
            source = self._read(member).decode("utf-8", "replace")
            module = qualified_name.rpartition(".")[0]
            self._classes.update(parse_classes(source, module, self._path, member))
        found = self._classes.get(qualified_name)
        if found is None:
            raise CorruptFileError(f"{self._path}: the archive has no code for "
                                   f"{qualified_name} ({member}): damaged or incomplete archive?")
        return found
