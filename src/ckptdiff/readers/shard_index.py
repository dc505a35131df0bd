"""The Hugging Face shard index (``*.index.json``: ``{"metadata": {...}, "weight_map": {key:
shard}}``) that both sharded readers share: safetensors (``model.safetensors.index.json``) and
torch (``pytorch_model.bin.index.json``).

Shard names must be relative names inside the index's folder: absolute names and ``..`` are
refused, and so is a symlink resolving outside that folder, except into the ``blobs/`` folder
next to ``snapshots/`` in the Hugging Face cache layout, where every shard is such a symlink.
The index and the shards must agree exactly, or the checkpoint is refused as corrupt.
"""

from __future__ import annotations

from pathlib import PurePosixPath, PureWindowsPath
from typing import Any

from ckptdiff.errors import CkptdiffError, CorruptFileError
from ckptdiff.readers.base import CountingFile, Location, is_within
from ckptdiff.readers.safetensors.strict_json import json_type, load_strict_json, quote

MAX_INDEX_BYTES = 100_000_000  # a 1M-tensor index is ~100 bytes a key: far below


def load_index(path: Location) -> tuple[dict[str, Any], dict[str, str], int]:
    """The index's ``metadata``, its ``weight_map`` (key -> shard name) and the bytes read."""
    label = str(path)
    try:
        with CountingFile(path) as file:
            if file.size > MAX_INDEX_BYTES:
                raise CorruptFileError(
                    f"{label}: {file.size:,} bytes is too large for a safetensors index "
                    f"(limit {MAX_INDEX_BYTES:,})"
                )
            raw = file.read(file.size)
            bytes_read = file.bytes_read
    except OSError as exc:
        raise CkptdiffError(f"{label}: cannot read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorruptFileError(f"{label}: index is not valid UTF-8 (byte {exc.start:,})") from None
    document = load_strict_json(text, f"{label}: index")
    if not isinstance(document, dict):
        raise CorruptFileError(f"{label}: index is a JSON {json_type(document)}, not an object")
    metadata = document.get("metadata")
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise CorruptFileError(f"{label}: index metadata is a JSON {json_type(metadata)}, "
                               "not an object")
    weight_map = document.get("weight_map")
    if not isinstance(weight_map, dict):
        raise CorruptFileError(
            f"{label}: index has no weight_map object (found a JSON {json_type(weight_map)})"
        )
    for key, shard in weight_map.items():
        if not isinstance(shard, str):
            raise CorruptFileError(f"{label}: weight_map maps {quote(key)} to a JSON "
                                   f"{json_type(shard)}, not a shard file name")
    return metadata, weight_map, bytes_read


def shard_path(index_path: Location, folder: Location, shard: str) -> Location:
    """Where ``shard`` lies: inside ``folder`` (or the hub cache's ``blobs/``), else refused."""
    posix = PurePosixPath(shard.replace("\\", "/"))
    if (not shard or "\x00" in shard or posix.is_absolute() or PureWindowsPath(shard).drive
            or ".." in posix.parts):
        raise CorruptFileError(
            f"{index_path}: refused shard name {quote(shard)}: shards must be named relative "
            "to the index's folder, without '..'"
        )
    candidate = folder.joinpath(*posix.parts)
    if not candidate.is_file():
        raise CorruptFileError(
            f"{index_path}: shard {quote(shard)} named in the weight_map is missing "
            f"(no file {candidate}): incomplete download?"
        )
    base = folder.resolve()
    target = candidate.resolve()
    hub_blobs = base.parent.parent / "blobs" if base.parent.name == "snapshots" else None
    if not (is_within(target, base) or (hub_blobs and is_within(target, hub_blobs))):
        raise CorruptFileError(
            f"{index_path}: refused shard {quote(shard)}: it is a link to {target}, outside "
            "the index's folder"
        )
    return candidate


def check_agreement(index_path: Location, weight_map: dict[str, str],
                    found: dict[str, str]) -> None:
    """Refuse an index whose weight_map and the shards' own listings (``found``) disagree."""
    astray = [(k, s) for k, s in weight_map.items() if found.get(k) != s]
    unlisted = sorted(k for k in found if k not in weight_map)
    if not astray and not unlisted:
        return
    problems = []
    if astray:
        key, shard = astray[0]
        actual = found.get(key)
        where = "in no shard" if actual is None else f"in {quote(actual)}"
        problems.append(f"{len(astray)} weight_map keys are not in the shard it names "
                        f"(e.g. {quote(key)} → {quote(shard)}, but it is {where})")
    if unlisted:
        key = unlisted[0]
        problems.append(f"{len(unlisted)} tensors in the shards are not in the weight_map "
                        f"(e.g. {quote(key)} in {quote(found[key])})")
    raise CorruptFileError(
        f"{index_path}: the index and its shards disagree: {'; '.join(problems)}"
    )
