"""The JSON records of a ``torch.export.save`` archive, validated into plain tuples.

``data/weights/<model>_weights_config.json`` (and ``data/constants/<model>_constants_config.json``)
are ``{"config": {fqn: PayloadMeta}}``, where a PayloadMeta (``torch/_export/serde/schema.py``) is
``{"path_name", "is_param", "use_pickle", "tensor_meta": {"dtype": ScalarType, "sizes": [{"as_int":
n}], "requires_grad", "device": {"type", "index"}, "strides", "storage_offset", "layout"}}``.
Everything is checked for type, so a damaged archive is a one-line error, never a crash.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ckptdiff.errors import CorruptFileError

# torch/_export/serde/schema.py ScalarType → (vocabulary dtype, bits per element).
SCALAR_TYPES: Mapping[int, tuple[str, int]] = {
    1: ("uint8", 8), 2: ("int8", 8), 3: ("int16", 16), 4: ("int32", 32), 5: ("int64", 64),
    6: ("float16", 16), 7: ("float32", 32), 8: ("float64", 64), 9: ("other", 32),
    10: ("complex64", 64), 11: ("complex128", 128), 12: ("bool", 8), 13: ("bfloat16", 16),
    28: ("uint16", 16), 29: ("float8_e4m3fn", 8), 30: ("float8_e5m2", 8), 31: ("other", 8),
    32: ("other", 8), 33: ("other", 8), 34: ("uint32", 32), 35: ("uint64", 64),
}
STRIDED = 7  # schema.Layout.Strided
MAX_CONFIG_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class Payload:
    """One weight or constant: where its bytes are and what tensor they make."""

    fqn: str
    path_name: str
    is_param: bool
    use_pickle: bool
    dtype: str
    bits: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]
    storage_offset: int
    requires_grad: bool
    device: str
    layout: int

    def extent_bytes(self) -> int:
        """Bytes from the file's start to the end of the tensor's last element."""
        if any(d == 0 for d in self.shape):
            return 0
        span = 1 + sum((d - 1) * s for d, s in zip(self.shape, self.stride, strict=True))
        return (self.storage_offset + span) * self.bits // 8


def parse_config(data: bytes, path: str, member: str) -> list[Payload]:
    """The payloads of one config file, in file order."""
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        raise CorruptFileError(f"{path}: {member} is not valid JSON: damaged archive?") from None
    config = document.get("config") if isinstance(document, dict) else None
    if not isinstance(config, dict):
        raise CorruptFileError(f"{path}: {member} has no \"config\" object")
    return [_payload(fqn, meta, path, member) for fqn, meta in config.items()]


def _payload(fqn: str, meta: object, path: str, member: str) -> Payload:
    def bad(what: str) -> CorruptFileError:
        return CorruptFileError(f"{path}: {member}: {fqn[:200]!r} has {what}")

    if not isinstance(meta, dict) or not isinstance(meta.get("tensor_meta"), dict):
        raise bad("no tensor_meta")
    tensor = meta["tensor_meta"]
    name = meta.get("path_name")
    if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
        raise bad("a bad path_name")
    code = tensor.get("dtype")
    if type(code) is not int or code not in SCALAR_TYPES:
        raise bad(f"an unknown dtype code {code!r}"[:120])
    shape, stride = _ints(tensor.get("sizes"), bad), _ints(tensor.get("strides"), bad)
    if len(stride) != len(shape):
        raise bad("strides that do not match its sizes")
    offset = _ints([tensor.get("storage_offset")], bad)[0]
    device = tensor.get("device")
    if not isinstance(device, dict) or not isinstance(device.get("type"), str):
        raise bad("no device")
    index = device.get("index")
    if index is not None and (type(index) is not int or not 0 <= index < 1 << 20):
        raise bad("a bad device index")
    flags = [meta.get("is_param"), meta.get("use_pickle"), tensor.get("requires_grad")]
    if not all(isinstance(f, bool) for f in flags) or type(tensor.get("layout")) is not int:
        raise bad("flags or a layout of the wrong type")
    dtype, bits = SCALAR_TYPES[code]
    kind = device["type"][:64]
    return Payload(fqn, name, bool(flags[0]), bool(flags[1]), dtype, bits, shape, stride,
                   offset, bool(flags[2]), kind if index is None else f"{kind}:{index}",
                   tensor["layout"])


def _ints(values: object, bad: Callable[[str], CorruptFileError]) -> tuple[int, ...]:
    # Sizes are {"as_int": n}; a symbolic size ({"as_expr": ...}) cannot be a stored weight's.
    if not isinstance(values, list) or len(values) > 64:
        raise bad("sizes, strides or an offset that are not a list of integers")
    out: list[int] = []
    for value in values:
        number = value.get("as_int") if isinstance(value, dict) else None
        if type(number) is not int or not 0 <= number < 1 << 62:
            raise bad("a size, stride or offset that is not a non-negative integer")
        out.append(number)
    return tuple(out)
