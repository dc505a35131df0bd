"""Mutations of safetensors headers: JSON text edits (duplicate keys, ``-0``, exponents, huge
dims), offsets that overlap, leave gaps or come out of order, odd dtypes and metadata, and the
8-byte header length itself. The header is rewritten with its new length, padded with spaces."""

from __future__ import annotations

import json
import random
import struct

_DTYPES = ["F32", "F16", "BF16", "I64", "U8", "BOOL", "F8_E4M3", "F8_E5M2", "F6_E3M2",
           "F6_E2M3", "F4", "F8_E8M0", "C64", "f32", "F64", "U16", "I4", "UNKNOWN"]
_NUMBERS = ["-0", "0", "1", "1e0", "1.0", "01", "-1", "18446744073709551615",
            "9223372036854775808", "9223372036854775807", "4294967296", "true", "null"]


def split(data: bytes) -> tuple[str, bytes]:
    """The header text and the data after it."""
    size = struct.unpack("<Q", data[:8])[0]
    return data[8:8 + size].decode("utf-8"), data[8 + size:]


def join(header: str, body: bytes, pad: bool = True) -> bytes:
    raw = header.encode("utf-8")
    if pad:
        raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + body


def mutate(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    """One edit of the header of the safetensors file ``data``."""
    text, body = split(data)
    header = json.loads(text)
    names = [k for k in header if k != "__metadata__"]
    name = rng.choice(names)
    entry = header[name]
    choice = rng.randrange(10)
    if choice == 0:  # a duplicate key: the second spelling of ``name`` decides, or the first
        other = dict(entry, shape=[rng.randrange(0, 5)])
        dup = json.dumps(name) + ":" + json.dumps(other)
        edited = "{" + dup + "," + text.strip()[1:] if rng.random() < 0.5 else (
            text.rstrip()[:-1] + "," + dup + "}")
        return f"duplicate:{name}", join(edited, body)
    if choice == 1:  # a number spelled another way
        field = rng.choice(["shape", "data_offsets"])
        values = entry[field]
        if not values:
            return f"empty:{field}", join(text.replace('"shape":[]', '"shape":[-0]', 1), body)
        index = rng.randrange(len(values))
        spelled = [str(v) for v in values]
        spelled[index] = rng.choice(_NUMBERS)
        new = json.dumps(header).replace(json.dumps({field: values})[1:-1],
                                         f'"{field}": [{", ".join(spelled)}]', 1)
        return f"number:{name}.{field}[{index}]={spelled[index]}", join(new, body)
    if choice == 2:
        entry["dtype"] = rng.choice(_DTYPES)
        return f"dtype:{name}={entry['dtype']}", join(json.dumps(header), body)
    if choice == 3:  # offsets: swapped between tensors, shifted, overlapping
        begin, end = entry["data_offsets"]
        shift = rng.choice([-8, -4, -1, 1, 4, 8])
        entry["data_offsets"] = rng.choice([[begin + shift, end + shift], [begin, end + shift],
                                            [end, begin], [0, end - begin]])
        return f"offsets:{name}={entry['data_offsets']}", join(json.dumps(header), body)
    if choice == 4 and len(names) > 1:
        a, b = rng.sample(names, 2)
        header[a]["data_offsets"], header[b]["data_offsets"] = (
            header[b]["data_offsets"], header[a]["data_offsets"])
        return f"swap:{a},{b}", join(json.dumps(header), body)
    if choice == 5:
        entry["shape"] = rng.choice([[], [0], [2**63], [2**64 - 1], [1, 1, 1], [3],
                                     entry["shape"][::-1]])
        return f"shape:{name}={entry['shape']}", join(json.dumps(header), body)
    if choice == 6:
        header["__metadata__"] = rng.choice([{"a": 1}, {"a": None}, [], "x", {"format": "pt"},
                                             {"": ""}])
        return f"metadata={header['__metadata__']}", join(json.dumps(header), body)
    if choice == 7:
        entry[rng.choice(["extra", "offsets", "DTYPE"])] = 1
        return f"field:{name}", join(json.dumps(header), body)
    if choice == 8:
        tail = rng.choice([b"", b"\0", b"\0" * 8, body[:4]])
        return f"body+{len(tail)}", join(text, body + tail if rng.random() < 0.6 else body[:-1])
    padding = rng.choice(["\0", "\t", "\n", "\ufeff"])
    edited = padding + text if rng.random() < 0.5 else text.rstrip() + padding
    return f"padding:{padding!r}", join(edited, body, pad=rng.random() < 0.5)
