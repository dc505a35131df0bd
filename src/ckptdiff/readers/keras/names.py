"""How ckptdiff names Keras variables, shared by every Keras reader and the live Keras target.

A key is ``<layer names>/<variable name>``: the user's layer names from the outermost layer below
the model down to the layer that owns the variable (``my_lstm/lstm_cell/kernel``), as Keras 3's
``variable.path`` spells it. Keras 3 files (``.weights.h5``, ``.keras``) store a layer's variables
by position only (``layers/dense_1/vars/0``), never by name, and Keras loads them by position.
ckptdiff names the variables of Keras' built-in layers from the table below; a layer it cannot name
(a custom layer, an unusual configuration) keeps positional keys, ``<layer names>/vars/<i>``.
Readers and the target apply the same rule to the same facts, so keys agree across formats.

Verified with Keras 3.15: a layer saves ``_trainable_variables + _non_trainable_variables``, each
in creation order, so a table row lists the variables created trainable first.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# Variable row: (name, config flag that must be true for it to exist or None, trainable).
_Row = tuple[str, str | None, bool]
_KERNEL_BIAS: tuple[_Row, ...] = (("kernel", None, True), ("bias", "use_bias", True))
_RECURRENT: tuple[_Row, ...] = (
    ("kernel", None, True), ("recurrent_kernel", None, True), ("bias", "use_bias", True))
_GAMMA_BETA: tuple[_Row, ...] = (("gamma", "scale", True), ("beta", "center", True))

# Built-in Keras layers and the variables they save, in saved order.
LAYER_VARIABLES: Mapping[str, tuple[_Row, ...]] = {
    "Dense": _KERNEL_BIAS,
    "EinsumDense": (("kernel", None, True), ("bias", "bias_axes", True)),
    **{name: _KERNEL_BIAS for name in (
        "Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose",
        "DepthwiseConv1D", "DepthwiseConv2D")},
    **{name: (("depthwise_kernel", None, True), ("pointwise_kernel", None, True),
              ("bias", "use_bias", True))
       for name in ("SeparableConv1D", "SeparableConv2D")},
    "BatchNormalization": _GAMMA_BETA + (
        ("moving_mean", None, False), ("moving_variance", None, False)),
    "LayerNormalization": _GAMMA_BETA,
    "GroupNormalization": _GAMMA_BETA,
    "RMSNormalization": (("scale", None, True),),
    "Embedding": (("embeddings", None, True),),
    **{name: _RECURRENT for name in ("LSTMCell", "GRUCell", "SimpleRNNCell", "ConvLSTMCell")},
    "PReLU": (("alpha", None, True),),
    "Normalization": (("mean", None, False), ("variance", None, False), ("count", None, False)),
}

# Layers whose children are named by role rather than by class (``query`` is an EinsumDense).
CHILD_CLASSES: Mapping[tuple[str, str], str] = {
    (parent, role): "EinsumDense"
    for parent in ("MultiHeadAttention", "GroupedQueryAttention")
    for role in ("query", "key", "value", "attention_output")
}

# Keras' class names that own no variables but matter as parents or containers.
_STRUCTURE_CLASSES = ("Sequential", "Functional", "LSTM", "GRU", "SimpleRNN", "ConvLSTM1D",
                      "ConvLSTM2D", "ConvLSTM3D", "MultiHeadAttention", "GroupedQueryAttention",
                      "Bidirectional", "TimeDistributed")


def to_snake_case(name: str) -> str:
    """Keras' ``naming.to_snake_case``: how Keras 3 names a layer's group by its class."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


CLASS_BY_SNAKE: Mapping[str, str] = {
    to_snake_case(name): name for name in (*LAYER_VARIABLES, *_STRUCTURE_CLASSES)
}


def class_of_default_name(name: str) -> str | None:
    """The built-in class whose default name ``name`` is (``dense_3`` → ``Dense``), if any."""
    return CLASS_BY_SNAKE.get(re.sub(r"_\d+$", "", name))


def child_class(parent_class: str | None, name: str) -> str | None:
    """The class of a child layer that is not a container item, from its role or default name."""
    if parent_class is not None and (parent_class, name) in CHILD_CLASSES:
        return CHILD_CLASSES[(parent_class, name)]
    return class_of_default_name(name)


@dataclass(frozen=True)
class VariableName:
    """How one saved variable is named: its short name and what kind of state it is."""

    name: str  # "kernel", or "vars/<i>" when it cannot be named
    kind: str  # "parameter" or "buffer"
    trainable: bool | None  # False for buffers; None where only a frozen flag could tell
    positional: bool


def variable_names(class_name: str | None, count: int) -> tuple[str, ...] | None:
    """The names of ``count`` saved variables of a ``class_name`` layer, or None if ambiguous.

    Optional variables (``bias`` without ``use_bias``) are dropped in every way that leaves
    ``count``; the names are known only when all those ways agree.
    """
    rows = LAYER_VARIABLES.get(class_name or "")
    if rows is None:
        return None
    optional = [i for i, row in enumerate(rows) if row[1] is not None]
    found: set[tuple[str, ...]] = set()
    for present in itertools.product((True, False), repeat=len(optional)):
        dropped = {i for i, keep in zip(optional, present, strict=True) if not keep}
        names = tuple(row[0] for i, row in enumerate(rows) if i not in dropped)
        if len(names) == count:
            found.add(names)
    return found.pop() if len(found) == 1 else None


def name_variables(class_name: str | None, count: int) -> list[VariableName]:
    """Names, kinds and default trainability of a layer's ``count`` saved variables."""
    names = variable_names(class_name, count)
    if names is None:
        return [VariableName(f"vars/{i}", "parameter", None, True) for i in range(count)]
    trainable = {row[0]: row[2] for row in LAYER_VARIABLES[class_name or ""]}
    return [VariableName(n, "parameter" if trainable[n] else "buffer",
                         None if trainable[n] else False, False) for n in names]


def class_saving(names: Sequence[str]) -> str | None:
    """A built-in class that saves exactly ``names`` (for files that record no classes)."""
    wanted = tuple(names)
    return next((cls for cls in LAYER_VARIABLES if variable_names(cls, len(wanted)) == wanted),
                None)


def join_key(chain: Sequence[str], name: str) -> str:
    """``chain`` and a variable name as one key (``sub/inner_dense/kernel``)."""
    return "/".join((*chain, name))
