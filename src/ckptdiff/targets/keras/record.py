"""Record what Keras 3 would save for a model, without writing or copying any weights.

Keras' ``saving_lib._save_state`` walks the model exactly as ``save_weights`` does, handing each
saveable's variables to a store (``store["0"] = variable``). A store subclass that keeps the
objects instead of writing them gives the saved layout (paths, ``name`` attributes, positions)
with every layer's own ``save_own_variables`` override respected. This uses Keras internals;
when they are missing (another Keras line), ``record_saved_state`` returns None.
"""

from __future__ import annotations

import inspect
from typing import Any

from ckptdiff.errors import UsageError

# saved path (("layers", "dense_1")) → (the layer's name attribute, [(position, value), …])
_EXPECTED_PARAMETERS = {"weights_store", "assets_store", "inner_path", "visited_saveables"}
Recorded = dict[tuple[str, ...], tuple[str | None, list[tuple[str, Any]]]]


def record_saved_state(model: Any) -> Recorded | None:
    """The variables ``model.save_weights`` would write, by saved path; None if unsupported."""
    try:
        from keras.src.saving import saving_lib
        from keras.src.saving.keras_saveable import KerasSaveable
    except ImportError:
        return None
    if not isinstance(model, KerasSaveable):  # e.g. a tf_keras (Keras 2) model
        return None
    store_base = getattr(saving_lib, "H5IOStore", None)
    save_state = getattr(saving_lib, "_save_state", None)
    if store_base is None or save_state is None or not set(
            inspect.signature(save_state).parameters) >= _EXPECTED_PARAMETERS:
        return None
    recorded: Recorded = {}
    current: list[tuple[str, ...]] = [()]

    def make(self: Any, path: str, metadata: dict[str, Any] | None = None) -> Any:
        key = tuple(part for part in str(path).split("/") if part)
        name = (metadata or {}).get("name")
        recorded.setdefault(key, (name if isinstance(name, str) else None, []))
        current[0] = key
        return self

    def setitem(self: Any, key: Any, value: Any) -> None:
        recorded[current[0]][1].append((str(key), value))

    def length(self: Any) -> int:
        return len(recorded.get(current[0], (None, []))[1])

    # Built with type() because the base class is only known at run time. No __init__ of the
    # base runs, so no file is opened.
    recorder_class = type("_RecordingStore", (store_base,), {
        "__init__": lambda self: None, "make": make, "__setitem__": setitem,
        "__len__": length, "__bool__": lambda self: True, "close": lambda self: None,
    })
    try:
        save_state(model, weights_store=recorder_class(), assets_store=None, inner_path="",
                   visited_saveables=set())
    except Exception as exc:  # a layer's own save_own_variables may raise anything
        raise UsageError(f"walking the Keras model as save_weights does failed: "
                         f"{type(exc).__name__}: {exc}") from None
    return recorded
