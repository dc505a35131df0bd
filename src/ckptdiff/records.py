"""Fast constructors for the frozen, slotted dataclasses a large diff builds by the 100,000.

A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__`` (its own
``__setattr__`` refuses): 2 µs for an eight-field :class:`~ckptdiff.diffing.report.Finding`, a
second of a 100,000-key diff for its findings and suggestions. :func:`fast_constructor` builds
the same record through a mutable twin class with identical slots (plain slot stores) and then
gives it the frozen class: the object is exactly what the class's own constructor makes (same
type, fields, equality, hash, pickling), in a quarter of the time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

Record = TypeVar("Record")


def fast_constructor(cls: type[Record]) -> Callable[..., Record]:
    """A callable taking ``cls``'s constructor arguments and returning what ``cls(...)`` would.

    ``cls`` must be a frozen dataclass with ``slots=True``, no ``__post_init__`` and no
    ``InitVar``/``init=False`` field: the twin's ``__init__`` then does what ``cls``'s does.
    """
    params = getattr(cls, "__dataclass_params__", None)
    if (params is None or not params.frozen or "__dict__" in dir(cls)
            or hasattr(cls, "__post_init__")):
        raise TypeError(f"{cls.__name__} is not a frozen slotted dataclass")
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]  # (a dataclass: checked above)
    if any(not f.init for f in fields):
        raise TypeError(f"{cls.__name__} has a field its constructor does not take")
    twin = dataclasses.make_dataclass(
        f"_{cls.__name__}Draft",
        [(f.name, f.type, dataclasses.field(default=f.default, default_factory=f.default_factory))
         for f in fields],
        slots=True, eq=False, repr=False, match_args=False)
    if twin.__slots__ != cls.__slots__:  # type: ignore[attr-defined]
        raise TypeError(f"{cls.__name__}'s slots are not its fields in order")

    def build(*args: Any, **kwargs: Any) -> Record:
        record = twin(*args, **kwargs)
        record.__class__ = cls  # identical slot layout: CPython allows the assignment
        return record  # type: ignore[no-any-return]

    build.__doc__ = f"``{cls.__name__}(...)``, built without frozen field stores."
    return build
