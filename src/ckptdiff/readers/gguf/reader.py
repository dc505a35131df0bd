"""The ``gguf`` reader: a GGUF file (llama.cpp, ollama) by its header alone.

What the manifest says for each tensor, and why:

- ``key`` is the GGUF tensor name (``blk.0.attn_q.weight``); ``shape`` is in the order users
  know (``[n_vocab, n_embd]`` for ``token_embd.weight``, as in the Hugging Face checkpoint it was
  converted from); ggml stores the dimensions the other way round.
- ``dtype`` is the GGML type: ``float32``/``float16``/``bfloat16``/``int8``… for plain types, the
  block type's own name (``q4_k``, ``q8_0``…) for quantized ones; ``nbytes`` is exact (whole
  blocks), the bytes the tensor occupies in the data section before padding.
- ``device`` is ``null`` and ``trainable`` ``null`` (the format says neither); ``kind`` is
  ``parameter``; ``storage`` is the file name and ``aliases`` are empty (tensors never share).

``metadata["gguf"]`` holds the version, alignment, where the data section starts, the facts users
ask for first (architecture, block count, context length, embedding length, vocabulary and
tokenizer sizes), every key/value pair (strings cut to 256 characters, arrays summarized by element
type and length, numeric arrays of up to 16 values kept), and each tensor's offset in the data
section.
"""

from __future__ import annotations

from typing import Any, ClassVar

from ckptdiff.errors import CkptdiffError, UsageError
from ckptdiff.manifest import Manifest, TensorInfo
from ckptdiff.readers.base import Location
from ckptdiff.readers.gguf.header import MAGIC, GgufHeader, read_header

# Per-architecture keys (``llama.block_count``) surfaced under their short name.
_ARCH_FACTS = ("block_count", "context_length", "embedding_length", "feed_forward_length",
               "vocab_size")
_ARCH_HEADS = ("attention.head_count", "attention.head_count_kv")


class GgufReader:
    """A ``.gguf`` file, versions 2 and 3, little-endian."""

    name: ClassVar[str] = "gguf"
    extensions: ClassVar[tuple[str, ...]] = (".gguf",)
    description: ClassVar[str] = "GGUF file, llama.cpp/ollama (header only)"
    requires: ClassVar[tuple[str, ...]] = ()
    extra: ClassVar[str | None] = None

    def sniff(self, head: bytes, path: Location) -> bool:
        """The file starts with the ``GGUF`` magic."""
        return head.startswith(MAGIC)

    def read(self, path: Location, key: str | None = None) -> Manifest:
        """Validate the header and describe every tensor; the data section is never read."""
        if key is not None:
            raise UsageError(f"{path}: --key {key!r} does not apply: a GGUF file is one flat set "
                             "of tensors, with no container to pick")
        if path.is_dir():
            raise CkptdiffError(f"{path}: is a directory, not a GGUF file")
        header = read_header(path)
        tensors = tuple(
            TensorInfo(key=t.name, shape=t.shape, dtype=t.dtype, device=None, nbytes=t.nbytes,
                       storage=path.name, aliases=(), kind="parameter", trainable=None)
            for t in header.tensors)
        return Manifest(path=str(path), format=self.name, tensors=tensors,
                        metadata={"gguf": gguf_metadata(header), "bytes_read": header.bytes_read})


def gguf_metadata(header: GgufHeader) -> dict[str, Any]:
    """The ``metadata["gguf"]`` object of a manifest (see the module docstring)."""
    values = header.values
    facts: dict[str, Any] = {
        "version": header.version,
        "alignment": header.alignment,
        "data_offset": header.data_offset,
        "tensor_count": len(header.tensors),
    }
    architecture = values.get("general.architecture")
    if isinstance(architecture, str):
        facts["architecture"] = architecture
        for fact in (*_ARCH_FACTS, *_ARCH_HEADS):
            if f"{architecture}.{fact}" in values:
                facts[fact.replace("attention.", "")] = values[f"{architecture}.{fact}"]
    for name in ("general.name", "general.file_type", "general.quantization_version"):
        if name in values:
            facts[name.removeprefix("general.")] = values[name]
    tokenizer = _tokenizer(values)
    if tokenizer:
        facts["tokenizer"] = tokenizer
    facts["kv"] = values
    facts["offsets"] = {t.name: t.offset for t in header.tensors}
    return facts


def _tokenizer(values: dict[str, Any]) -> dict[str, Any]:
    """Tokenizer model and sizes: the lengths of its arrays, which are never expanded."""
    out: dict[str, Any] = {}
    if isinstance(values.get("tokenizer.ggml.model"), str):
        out["model"] = values["tokenizer.ggml.model"]
    for name in ("tokens", "merges", "scores", "token_type"):
        entry = values.get(f"tokenizer.ggml.{name}")
        if isinstance(entry, dict) and "length" in entry:
            out[name] = entry["length"]
    return out
