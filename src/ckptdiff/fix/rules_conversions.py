"""The ``conversions`` of a rules file, read and checked op by op before anything is read.

Every field an op does not take, every one it needs and lacks, and every count that cannot fit
(a ``concat`` of runs that do not divide the tensors, a ``chunk`` of several, results that are
not one per target) is a ``ValueError`` whose text says what is wrong; ``rules_file.load`` names
the file and the conversion (its first target) around it. What needs the tensors' shapes (a dim
they lack, sizes that do not add up, equal parts of a dim they do not divide) ``remap`` checks.
"""

from __future__ import annotations

from typing import Any

from ckptdiff.rename.results import Conversion, ConversionOp

OPS = ("concat", "stack", "chunk", "transpose", "merge_lora")
# The fields each op takes besides ``op``; the ones it needs. ``chunk`` needs ``parts`` or
# ``sizes``: ``parts`` alone is equal parts (``torch.chunk``), checked against the dim by remap.
_TAKES = {"concat": {"dim", "parts", "per"}, "stack": {"dim"}, "chunk": {"dim", "parts", "sizes"},
          "transpose": {"dims"}, "merge_lora": {"scale", "fan_in_fan_out"}}
_NEEDS = {"concat": {"dim"}, "stack": {"dim"}, "chunk": {"dim"}, "transpose": {"dims"},
          "merge_lora": {"scale"}}
_ENTRY_FIELDS = {"sources", "targets", "target", "ops", "confidence", "rule"}


def whole_number(value: Any, what: str, least: int = 0) -> int:
    """``value`` as an int when it is one (not a bool, not 1.5) of at least ``least``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValueError(f"{what} is {value!r}, not a whole number of at least {least}")
    return value


def names(value: Any, what: str) -> tuple[str, ...]:
    """A non-empty list of keys."""
    if not isinstance(value, list) or not value or not all(isinstance(k, str) for k in value):
        raise ValueError(f"{what} must be a non-empty list of keys, not {value!r}")
    return tuple(value)


def conversion(entry: Any) -> Conversion:
    """One ``conversions`` entry, checked (a ``ValueError`` saying what is wrong)."""
    if not isinstance(entry, dict):
        raise ValueError(f"a conversion must be an object, not {entry!r}")
    unknown = sorted(set(entry) - _ENTRY_FIELDS)
    if unknown:
        raise ValueError(f"unknown field {unknown[0]!r} (one of "
                         f"{', '.join(sorted(_ENTRY_FIELDS))})")
    sources = names(entry.get("sources"), "sources")
    targets = names(entry.get("targets"), "targets")
    if entry.get("target") is not None and (len(targets) != 1 or entry["target"] != targets[0]):
        raise ValueError(f"target {entry['target']!r} is not its one target")
    raw_ops = entry.get("ops")
    if not isinstance(raw_ops, list) or not raw_ops:
        raise ValueError("ops must be a non-empty list")
    ops = tuple(_op(op, n) for n, op in enumerate(raw_ops, 1))
    count = len(sources)
    for n, op in enumerate(ops, 1):
        count = _count_after(op, count, n)
    if count != len(targets):
        raise ValueError(f"the ops make {count} tensor(s) of the {len(sources)} source(s), and "
                         f"there are {len(targets)} targets")
    confidence = entry.get("confidence", 1.0)
    if isinstance(confidence, bool) or not isinstance(confidence, int | float):
        raise ValueError(f"confidence is {confidence!r}, not a number")
    return Conversion(sources, targets, ops, float(confidence),
                      str(entry.get("rule", "stated in the rules file")))


def _op(entry: Any, n: int) -> ConversionOp:
    if not isinstance(entry, dict) or entry.get("op") not in OPS:
        name = entry.get("op") if isinstance(entry, dict) else entry
        raise ValueError(f"unknown conversion op {name!r} (one of {', '.join(OPS)})")
    name = entry["op"]
    what = f"op {n} ({name})"
    fields = {k for k, v in entry.items() if k != "op" and v is not None}
    extra = sorted(fields - _TAKES[name])
    if extra:
        raise ValueError(f"{what} does not take {extra[0]!r} (it takes "
                         f"{', '.join(sorted(_TAKES[name]))})")
    lacking = sorted(_NEEDS[name] - fields)
    if lacking:
        raise ValueError(f"{what} needs {lacking[0]!r}")
    dim = None if "dim" not in fields else whole_number(entry["dim"], f"{what} dim")
    parts = None if "parts" not in fields else whole_number(entry["parts"], f"{what} parts", 1)
    sizes = dims = per = None
    if "sizes" in fields:
        raw = entry["sizes"]
        if not isinstance(raw, list) or not raw:
            raise ValueError(f"{what} sizes must be a non-empty list, not {raw!r}")
        sizes = tuple(whole_number(s, f"{what} sizes entry") for s in raw)
        if parts is not None and parts != len(sizes):
            raise ValueError(f"{what} has parts {parts} but {len(sizes)} sizes")
    elif name == "chunk" and parts is None:
        raise ValueError(f"{what} needs 'parts' (equal parts) or 'sizes'")
    if "dims" in fields:
        raw = entry["dims"]
        if not isinstance(raw, list) or len(raw) != 2:
            raise ValueError(f"{what} dims must be two dimensions, not {raw!r}")
        dims = (whole_number(raw[0], f"{what} dims"), whole_number(raw[1], f"{what} dims"))
        if dims[0] == dims[1]:
            raise ValueError(f"{what} swaps dim {dims[0]} with itself")
    if "per" in fields:
        if not isinstance(entry["per"], str):
            raise ValueError(f"{what} per is {entry['per']!r}, not a name")
        per = entry["per"]
    scale = fan_in_fan_out = None
    if "scale" in fields:  # (a file ckptdiff wrote for a LoRA merge: remap performs it)
        raw = entry["scale"]
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise ValueError(f"{what} scale is {raw!r}, not a number")
        scale = float(raw)
    if "fan_in_fan_out" in fields:
        if not isinstance(entry["fan_in_fan_out"], bool):
            raise ValueError(f"{what} fan_in_fan_out is {entry['fan_in_fan_out']!r}, not "
                             "true or false")
        fan_in_fan_out = entry["fan_in_fan_out"] or None
    return ConversionOp(name, dim, parts, sizes, per, dims, scale, fan_in_fan_out)


def _count_after(op: ConversionOp, count: int, n: int) -> int:
    """How many tensors ``op`` leaves of ``count`` (a ``ValueError`` when it cannot apply)."""
    if op.op == "concat":
        runs = op.parts or count
        if count % runs:
            raise ValueError(f"op {n} (concat) joins runs of {runs}, which do not divide the "
                             f"{count} tensor(s) it is given")
        return count // runs
    if op.op == "stack":
        return 1
    if op.op == "merge_lora":
        if n != 1 or count != 3:
            raise ValueError(f"op {n} (merge_lora) is a conversion's one op, of its three "
                             f"sources [W, lora_A, lora_B], and it is given {count}")
        return 1
    if op.op == "chunk":
        if count != 1:
            raise ValueError(f"op {n} (chunk) splits one tensor, and it is given {count}")
        return len(op.sizes) if op.sizes is not None else op.parts or 1
    return count
