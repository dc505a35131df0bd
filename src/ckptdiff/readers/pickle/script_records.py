"""Opaque records for the globals only TorchScript archives (``torch.jit.save``) pickle.

A TorchScript ``data.pkl`` is the module tree: each module is an instance of its compiled class,
named ``__torch__.<python path>.<class>`` (``__torch__.torch.nn.modules.linear.Linear``), built by
NEWOBJ and filled by BUILD with a dict of attributes (tensors, submodules, ints …). Such a name is
*never imported*: each becomes a fresh class here (NEWOBJ needs a class) whose instances only
keep the attribute dict as inert data. ``torch.jit._pickle``'s list builders and type tags wrap
plain lists and dicts; they return their argument. These names are allowed for a TorchScript
archive's pickles only (``load_pickle(extra_globals=...)``), never for a ``torch.save`` file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ckptdiff.readers.pickle.rebuild import Recorder
from ckptdiff.readers.pickle.records import Record
from ckptdiff.readers.pickle.validate import RecordError, as_text

SCRIPT_MODULE_PREFIX = "__torch__"
_LIST_BUILDERS = ("build_intlist", "build_doublelist", "build_boollist", "build_tensorlist")
_MAX_STATE_ITEMS = 1 << 20


class ScriptObjectRecord(Record):
    """An instance of a scripted class: its qualified name and the attribute state BUILD set.

    ``attributes`` is ``None`` until BUILD; a class with its own ``__getstate__`` sends other
    state (a tuple), which is kept as ``custom_state``, never interpreted.
    """

    __slots__ = ("attributes", "custom_state")
    qualified_name = "__torch__.?"

    def __setstate__(self, state: object) -> None:
        if self.state_set:
            raise RecordError(f"the pickle sets state twice on a {self.qualified_name}")
        if isinstance(state, dict):
            if not all(isinstance(k, str) for k in state) or len(state) > _MAX_STATE_ITEMS:
                raise RecordError(f"a {self.qualified_name}'s attributes are not named by text")
            self.attributes = state
        elif isinstance(state, tuple):
            self.custom_state = state
        else:
            raise RecordError(f"the pickle sets {type(state).__name__} state on a "
                              f"{self.qualified_name}")

    @property
    def state_set(self) -> bool:
        """True once BUILD has given this object its state."""
        return hasattr(self, "attributes") or hasattr(self, "custom_state")

    def attribute_dict(self) -> dict[str, object]:
        """The attributes BUILD set (empty for a class with custom state, or none yet)."""
        return getattr(self, "attributes", {})


def script_class(qualified_name: str) -> type[ScriptObjectRecord]:
    """A fresh class standing for the scripted class ``qualified_name`` (nothing imported)."""
    return type("ScriptObject", (ScriptObjectRecord,), {"__slots__": (),
                                                       "qualified_name": qualified_name})


def _identity_list(*args: object) -> list[object]:
    if len(args) != 1 or not isinstance(args[0], list):
        raise RecordError("torch.jit._pickle list builders take one list")
    return args[0]


def _restore_type_tag(*args: object) -> object:
    # (value, "Dict[str, int]"): the tag only types an empty container for TorchScript.
    if len(args) != 2 or not isinstance(args[0], (list, dict)):
        raise RecordError("restore_type_tag takes (list or dict, type name)")
    as_text(args[1], "type tag")
    return args[0]


def script_globals(names: Iterable[tuple[str, str]]) -> Mapping[tuple[str, str], object]:
    """The extra allow-list for one TorchScript pickle: a record class for each ``__torch__.*``
    global it names, and the ``torch.jit._pickle`` helpers."""
    table: dict[tuple[str, str], object] = {}
    for module, name in names:
        if module == SCRIPT_MODULE_PREFIX or module.startswith(SCRIPT_MODULE_PREFIX + "."):
            table[(module, name)] = script_class(f"{module}.{name}")
    for builder in _LIST_BUILDERS:
        table[("torch.jit._pickle", builder)] = Recorder(f"torch.jit._pickle.{builder}",
                                                         _identity_list)
    table[("torch.jit._pickle", "restore_type_tag")] = Recorder(
        "torch.jit._pickle.restore_type_tag", _restore_type_tag)
    return table
