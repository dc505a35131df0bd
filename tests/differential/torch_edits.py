"""Mutations of torch checkpoints: the pickle edited inside its container (rewritten by torch's
own ``PyTorchFileWriter``, so only the edit differs), and zip-level edits of the archive itself:
header fields, central directory against local headers, a second archive appended or hidden in
the zip comment, duplicate members, missing or odd records, members outside the root folder."""

from __future__ import annotations

import io
import random
import struct
import zipfile

from tests.differential.pickle_edits import edit
from tests.hostile import zips

_EOCD = b"PK\x05\x06"


def zip_records(data: bytes) -> list[tuple[str, bytes]]:
    """The members of a torch zip in order, names without the root folder."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return [(info.filename.split("/", 1)[1], archive.read(info))
                for info in archive.infolist()]


def torch_zip(records: list[tuple[str, bytes]]) -> bytes:
    """An archive written by torch's writer (aligned storages, ``version`` and id records)."""
    import torch

    buffer = io.BytesIO()
    writer = torch._C.PyTorchFileWriter(buffer)
    for name, payload in records:
        if name not in ("version", ".data/serialization_id"):
            writer.write_record(name, payload, len(payload))
    writer.write_end_of_file()
    return buffer.getvalue()


def legacy_parts(data: bytes) -> tuple[list[bytes], bytes]:
    """A legacy file split into its five pickles and the storage bytes after them."""
    import pickletools

    parts, pos = [], 0
    for _ in range(5):
        end = pos + max(p for _, _, p in pickletools.genops(data[pos:])) + 1
        parts.append(data[pos:end])
        pos = end
    return parts, data[pos:]


def mutate_legacy(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    """Edit the main pickle (mostly) or one of the other four."""
    parts, tail = legacy_parts(data)
    which = 3 if rng.random() < 0.85 else rng.choice([0, 1, 2, 4])
    what, parts[which] = edit(parts[which], rng)
    if rng.random() < 0.1:
        cut = rng.randrange(0, 9)
        tail = tail[:len(tail) - cut] if rng.random() < 0.5 else tail + b"\0" * cut
        what += f"+tail{cut}"
    return f"pickle{which}:{what}", b"".join(parts) + tail


def _with_comment(data: bytes, comment: bytes) -> bytes:
    end = data.rfind(_EOCD)
    return data[:end + 20] + struct.pack("<H", len(comment)) + comment


def _rezip(records: list[tuple[str, bytes]], rename: dict[str, str]) -> bytes:
    return zips.archive([(rename.get(name, name), payload) for name, payload in records])


def mutate_zip(data: bytes, other: bytes, rng: random.Random) -> tuple[str, bytes]:
    """One archive-level edit; ``other`` is another seed's archive to confuse it with."""
    names = [f"archive/{name}" for name, _ in zip_records(data)]
    choice = rng.randrange(9)
    if choice == 0:
        return "appended-archive", data + other
    if choice == 1:
        return "archive-in-comment", _with_comment(data, other[:65000])
    if choice == 2:
        pad = rng.choice([1, 7, 64, 512])
        return f"prepended{pad}", b"\0" * pad + data
    if choice == 3:
        field = rng.choice(list(zips.CENTRAL_FIELDS))
        value = rng.choice([0, 1, 8, 9, 0x801, 12, 99, 2**31, 0xFFFFFFFF])
        name = rng.choice(names)
        size = 2 if zips.CENTRAL_FIELDS[field][1] == "<H" else 4
        return f"central:{name}:{field}={value}", zips.patch_central(
            data, name, field, value % (1 << (8 * size)))
    if choice == 4:
        field = rng.choice(list(zips.LOCAL_FIELDS))
        name = rng.choice(names)
        size = 2 if zips.LOCAL_FIELDS[field][1] == "<H" else 4
        value = rng.choice([0, 1, 8, 9, 12, 0xFFFFFFFF]) % (1 << (8 * size))
        return f"local:{name}:{field}={value}", zips.patch_local(data, name, field, value)
    if choice == 5:
        eocd = data.rfind(_EOCD)
        field = rng.choice([4, 6, 8, 10])
        out = bytearray(data)
        struct.pack_into("<H", out, eocd + field, rng.choice([0, 1, 2, 0xFFFF]))
        return f"eocd+{field}", bytes(out)
    records = zip_records(data)
    if choice == 6:
        name, payload = rng.choice(records)
        return f"duplicate:{name}", zips.archive(
            [(f"archive/{n}", p) for n, p in records] + [(f"archive/{name}", payload[::-1])])
    if choice == 7:
        name = rng.choice([n for n, _ in records])
        new = rng.choice(["other/" + name, "archive/x/" + name, name])
        return f"moved:{name}->{new}", _rezip(
            [(f"archive/{n}", p) for n, p in records], {f"archive/{name}": new})
    record = rng.choice(["version", ".storage_alignment", "byteorder", ".format_version"])
    value = rng.choice([b"", b"3", b"1", b"abc", b"99", b"-1", b"64", b"big", b"little\n"])
    kept = [(n, p) for n, p in records if n != record]
    if rng.random() < 0.7:
        kept.append((record, value))
    return f"record:{record}={value!r}", zips.archive([(f"archive/{n}", p) for n, p in kept])


def mutate_torch_zip(data: bytes, other: bytes, rng: random.Random) -> tuple[str, bytes]:
    """Half the time an edit of ``data.pkl``, else an edit of the archive."""
    if rng.random() < 0.5:
        return mutate_zip(data, other, rng)
    records = zip_records(data)
    index = next(i for i, (name, _) in enumerate(records) if name == "data.pkl")
    what, pickled = edit(records[index][1], rng)
    records[index] = ("data.pkl", pickled)
    return f"data.pkl:{what}", torch_zip(records)
