"""The fixed caps every reader applies to untrusted files, and small guards they share.

ckptdiff reads checkpoints from strangers. Three rules hold for every reader:

- **No execution.** Pickles are read only by the restricted unpickler, whose globals resolve to
  inert recorders; nothing is imported or called on a file's behalf.
- **Bounded resources.** Every length or count read from a file is checked against the file's
  size and against the caps below before anything is allocated, and work is bounded by
  *operation counts* (pickle opcodes, container visits, HDF5 objects), not by a wall clock: an
  operation count gives the same answer on a fast laptop and a loaded CI runner, and each cap is
  far above what real checkpoints need (the comments say how far).
  The one exception is native code ckptdiff does not control: the HDF5 library runs in a forked
  child with a wall-clock limit (:mod:`ckptdiff.readers.native_sandbox`), since a damaged file
  can make it loop forever.
- **No escape from the checkpoint.** Nothing is read through a link, symlink or path that leaves
  the checkpoint's file or directory (except the Hugging Face cache's ``blobs/`` folder).

The zip-specific guards are in :mod:`ckptdiff.readers.zip_safety`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ckptdiff.errors import CorruptFileError
from ckptdiff.manifest import Manifest
from ckptdiff.readers.base import Location, is_within, open_binary

# --- pickles -----------------------------------------------------------------------------------
# A 100k-tensor state dict pickles to ~12 MB and ~3.2M opcodes (32 per tensor).
MAX_PICKLE_BYTES = 1 << 30
# ~2M tensors' worth; scanning runs at ~1M opcodes/s, so a refusal comes within about a minute.
MAX_PICKLE_OPCODES = 64_000_000
# Real checkpoints nest tuples a handful of levels deep; CPython crashes somewhere past ~100k.
MAX_TUPLE_DEPTH = 1000
# Integers of 61+ bits can be chosen to share one hash; 20,000 of them as dict keys take CPython
# ~4 s to unpickle (quadratic). Checkpoints hold a few (RNG states).
MAX_WIDE_INTS = 10_000

# --- unpickled containers ----------------------------------------------------------------------
MAX_CONTAINER_DEPTH = 100
# Tensors a container may expand to (a tensor shared under two keys counts twice), at most, and
# at most so many times the distinct tensors behind them (or the floor, whichever is larger):
# containers are counted once however often they are shared, so a bomb is refused by its count.
MAX_CONTAINER_VISITS = 10_000_000
MAX_TENSOR_REPEATS = 16
MAX_REPEATED_TENSORS_FLOOR = 100_000
# One flattened key (``model.layers.0.weight``) and all of them together, in characters: a
# pickle can share one container under many keys, so short pickles can spell out huge keys.
MAX_KEY_CHARS = 65_536
MAX_KEY_CHARS_TOTAL = 128 * 1024 * 1024

# --- zip archives (torch zip, .keras) ----------------------------------------------------------
MAX_ZIP_ENTRIES = 1_000_000  # torch writes one entry per storage: 1M is ~1M tensors
# A compressed member may expand to this many times its size, or to the floor below,
# whichever is larger (torch stores members uncompressed; Keras JSON deflates ~5-20x).
MAX_COMPRESSION_RATIO = 100
COMPRESSION_FLOOR_BYTES = 1 << 20

# --- text that ends up in manifests and messages -----------------------------------------------
MAX_SHOWN_CHARS = 200
MAX_JSON_INT_BITS = 128

LFS_POINTER = b"version https://git-lfs.github.com/spec/v1"


def is_lfs_pointer(head: bytes) -> bool:
    """True when ``head`` (a file's first bytes) is a Git LFS pointer instead of the content."""
    return head.startswith(LFS_POINTER)


def lfs_pointer_error(path: str, member: str | None = None) -> CorruptFileError:
    """The one-line error for a Git LFS pointer where weights were expected."""
    what = f"{member} is" if member else "is"
    return CorruptFileError(f"{path}: {what} a Git LFS pointer file, not the weights: "
                            "run 'git lfs pull'")


def check_lfs_pointer(file: Location, display: str, member: str | None = None) -> None:
    """Raise :func:`lfs_pointer_error` when ``file`` holds a Git LFS pointer (unreadable: no-op)."""
    try:
        with open_binary(file) as handle:
            head = handle.read(len(LFS_POINTER))
    except OSError:
        return
    if is_lfs_pointer(head):
        raise lfs_pointer_error(display, member)


def utf8_text(text: str) -> str:
    """``text`` made encodable as UTF-8: lone surrogates (a pickle can hold them) become
    ``\\udc80``-style escapes, so manifests can always be written out."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def _writable(text: str | None) -> bool:
    return text is None or text.isascii() or utf8_text(text) is text


def _all_writable(value: Any) -> bool:
    if isinstance(value, str):
        return _writable(value)
    if isinstance(value, dict):
        return all(_all_writable(k) and _all_writable(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return all(_all_writable(item) for item in value)
    return True


def _made_writable(value: Any) -> Any:
    if isinstance(value, str):
        return utf8_text(value)
    if isinstance(value, dict):
        return {_made_writable(k): _made_writable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_made_writable(item) for item in value)
    return value


def _all_texts_writable(manifest: Manifest) -> bool:
    # One joined string per field is checked at C speed (ASCII, else one UTF-8 encode: only a
    # lone surrogate fails it); a per-text check took a second of a 100,000-key snapshot read.
    # The keys as ``by_key`` holds them: the diff that follows a read needs that index anyway.
    tensors = manifest.tensors
    columns = (manifest.by_key, [a for t in tensors for a in t.aliases],
               [t.device or "" for t in tensors], [t.storage or "" for t in tensors],
               [t.slot_of or "" for t in tensors], [t.variable_name or "" for t in tensors])
    return all(_writable("\n".join(column)) for column in columns)


def writable_manifest(manifest: Manifest) -> Manifest:
    """``manifest`` with every text made encodable as UTF-8 (names that HDF5 files or pickles
    spell may hold lone surrogates, which no JSON writer can output); itself when all are."""
    if _all_texts_writable(manifest) and _writable(manifest.container_key) and _all_writable(
            manifest.metadata):
        return manifest
    tensors = tuple(replace(
        t, key=utf8_text(t.key), device=_made_writable(t.device), storage=_made_writable(
            t.storage), slot_of=_made_writable(t.slot_of), variable_name=_made_writable(
            t.variable_name), aliases=tuple(utf8_text(a) for a in t.aliases))
        for t in manifest.tensors)
    return replace(manifest, tensors=tensors, container_key=_made_writable(
        manifest.container_key), metadata=_made_writable(manifest.metadata))


def shown(text: str, limit: int = MAX_SHOWN_CHARS) -> str:
    """``text`` for a one-line message: non-printable characters escaped, cut to ``limit``."""
    if not text.isprintable():
        text = text.encode("unicode_escape", "backslashreplace").decode("ascii")
    return text if len(text) <= limit else text[:limit - 1] + "…"


def json_int(value: int) -> int | None:
    """``value`` when it is small enough to write as JSON (Python refuses to print ints of more
    than 4,300 digits), else ``None``."""
    return value if value.bit_length() <= MAX_JSON_INT_BITS else None


def resolve_inside(folder: Location, candidate: Location, display: str, what: str) -> Location:
    """``candidate`` if it resolves (symlinks followed) inside ``folder``, or into the ``blobs/``
    folder of a Hugging Face cache when ``folder`` is a ``snapshots/<revision>`` folder, where
    every file is such a link; otherwise a one-line refusal naming ``what``."""
    try:
        base = folder.resolve()
        target = candidate.resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop
        raise CorruptFileError(f"{display}: cannot resolve {what}: {exc}") from None
    hub_blobs = base.parent.parent / "blobs" if base.parent.name == "snapshots" else None
    if is_within(target, base) or (hub_blobs is not None and is_within(target, hub_blobs)):
        return candidate
    raise CorruptFileError(
        f"{display}: refused: {what} is a link to {target}, outside the checkpoint's folder")
