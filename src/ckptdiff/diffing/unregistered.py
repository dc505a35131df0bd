"""``unregistered`` findings: tensors a live model holds where its framework never looks.

A torch tensor in a plain attribute (neither ``nn.Parameter`` nor a buffer), tensors or modules
in plain Python lists and dicts, a ``tf.Variable`` on a Keras 3 layer: none of them is saved or
loaded, and an optimizer built from the model's parameters never updates them. The live-model
targets find them (``targets/torch/unregistered.py``, ``targets/keras/unregistered.py``) and
record them in ``metadata["unregistered"]``; this turns each record into a warning with the source
side null and the target side describing the tensor.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ckptdiff.diffing.report import Finding, TensorSide
from ckptdiff.manifest import Manifest


def unregistered_findings(source: Manifest, target: Manifest) -> list[Finding]:
    """One warning per unregistered tensor the target recorded."""
    records = target.metadata.get("unregistered")
    if not isinstance(records, list):
        return []
    return [_finding(record, source) for record in records if _valid(record)]


def _valid(record: object) -> bool:
    return (isinstance(record, Mapping) and isinstance(record.get("key"), str)
            and isinstance(record.get("shape"), list) and isinstance(record.get("dtype"), str))


def _finding(record: Mapping[str, Any], source: Manifest) -> Finding:
    key = record["key"]
    side = TensorSide(tuple(int(d) for d in record["shape"]), record["dtype"],
                      record.get("device"))
    note = f"{record.get('attribute', key)}: {record.get('reason', 'not registered')}"
    if key in source.by_key:
        # The checkpoint has the tensor (saved by a model that registered it): say why the key
        # also shows up as unexpected.
        note += "; the checkpoint has this key, which this model cannot load"
    fix = record.get("fix")
    if fix:
        note += f"; fix: {fix}"
    return Finding("unregistered", key, "warning", None, side, note)
