"""Finds the checkpoint prefix a user means by a path.

Accepted: the prefix itself (``dir/model.ckpt``, ``dir/ckpt-3``; not a file), its ``.index``
file, one of its ``.data-NNNNN-of-NNNNN`` shards, a directory holding a ``checkpoint`` state file
(``model_checkpoint_path: "ckpt-3"`` names the newest checkpoint), that state file itself, or a
directory holding exactly one ``.index`` file.
"""

from __future__ import annotations

import re
from pathlib import Path

from google.protobuf import text_encoding

from ckptdiff.errors import CkptdiffError, CorruptFileError
from ckptdiff.readers.base import Location, open_binary
from ckptdiff.readers.safety import shown

STATE_FILE = "checkpoint"
INDEX_SUFFIX = ".index"
MAX_STATE_FILE_BYTES = 1024 * 1024
TABLE_MAGIC_BYTES = (0xDB4775248B80FB57).to_bytes(8, "little")
_DATA_SHARD = re.compile(r"\.data-\d{5}-of-\d{5}$")
_STATE_LINE = re.compile(rb'^\s*model_checkpoint_path\s*:\s*"((?:[^"\\]|\\.)*)"', re.MULTILINE)


def index_of(prefix: Location) -> Location:
    """The ``.index`` file of a checkpoint prefix."""
    return prefix.with_name(prefix.name + INDEX_SUFFIX)


def looks_like_index(index: Location) -> bool:
    """True when ``index`` ends with the table magic or starts like a bundle's header entry."""
    try:
        with open_binary(index) as handle:
            start = handle.read(2)
            handle.seek(0, 2)
            if handle.tell() < len(TABLE_MAGIC_BYTES):
                return start == b"\x00\x00"
            handle.seek(-len(TABLE_MAGIC_BYTES), 2)
            return handle.read() == TABLE_MAGIC_BYTES or start == b"\x00\x00"
    except OSError:
        return False


def state_file_prefix(state: Location, display: str) -> Location:
    """The newest checkpoint a ``checkpoint`` state file names, as a prefix beside it."""
    try:
        with open_binary(state) as handle:
            text = handle.read(MAX_STATE_FILE_BYTES + 1)
    except OSError as exc:
        raise CkptdiffError(f"{display}: cannot read {state.name}: {exc.strerror}") from None
    match = _STATE_LINE.search(text[:MAX_STATE_FILE_BYTES])
    if match is None:
        raise CorruptFileError(
            f"{display}: the '{STATE_FILE}' file has no model_checkpoint_path line")
    try:
        named = text_encoding.CUnescape(match.group(1).decode("utf-8")).decode("utf-8")
    except (UnicodeDecodeError, ValueError):
        raise CorruptFileError(f"{display}: unreadable model_checkpoint_path") from None
    directory = state.parent
    written = Path(named)
    if not written.name or "\x00" in named:  # "/", "", a NUL: names no checkpoint
        raise CorruptFileError(f"{display}: unreadable model_checkpoint_path {shown(named)!r}")
    # TensorFlow writes absolute prefixes (TF1 Saver); a copied directory keeps only the name.
    if written.is_absolute() and index_of(directory / written.name).is_file():
        return directory / written.name
    prefix = written if written.is_absolute() else directory / written
    if not index_of(prefix).is_file():
        raise CorruptFileError(
            f"{display}: the '{STATE_FILE}' file names checkpoint {written.name!r}, but "
            f"{shown(written.name + INDEX_SUFFIX)} is not there")
    return prefix


def is_state_file(path: Location) -> bool:
    """True for a ``checkpoint`` state file (a text proto naming model_checkpoint_path)."""
    if path.name != STATE_FILE or not path.is_file():
        return False
    try:
        with open_binary(path) as handle:
            return _STATE_LINE.search(handle.read(4096)) is not None
    except OSError:
        return False


def find_prefix(path: Location, display: str) -> Location | None:
    """The checkpoint prefix ``path`` designates, or None when it designates none.

    Raises a one-line error only where ``path`` clearly means a checkpoint that is broken (a
    state file naming a missing checkpoint).
    """
    if path.is_dir():
        if (path / "saved_model.pb").exists():
            return None
        if is_state_file(path / STATE_FILE):
            return state_file_prefix(path / STATE_FILE, display)
        indexes = sorted(p for p in path.glob("*" + INDEX_SUFFIX) if p.is_file())
        if len(indexes) == 1 and looks_like_index(indexes[0]):
            return indexes[0].with_name(indexes[0].name[:-len(INDEX_SUFFIX)])
        return None
    if path.is_file():
        if path.name.endswith(INDEX_SUFFIX) and looks_like_index(path):
            return path.with_name(path.name[:-len(INDEX_SUFFIX)])
        if is_state_file(path):
            return state_file_prefix(path, display)
        shard = _DATA_SHARD.search(path.name)
        if shard is not None:
            prefix = path.with_name(path.name[:shard.start()])
            return prefix if looks_like_index(index_of(prefix)) else None
        return None
    return path if index_of(path).is_file() else None
