"""Write the GGUF fixtures of the reader conformance suite with llama.cpp's own writer
(``gguf.GGUFWriter``; needs the ``gguf`` package and numpy).

Run from anywhere: ``.venv/bin/python testdata/readers/gguf/make_fixtures.py``; then
``.venv/bin/python tests/regen_golden.py`` and review the golden diffs. Values are fixed, so the
files are reproducible.

- ``tiny_llama.gguf``: a two-block Llama header as ``convert_hf_to_gguf.py`` writes it (names,
  order, F32 norms, F16 matrices), a tokenizer of 16 tokens with scores and token types.
- ``quantized.gguf``: block types (``q8_0``, ``q4_0``, ``q4_k``, ``q6_k``) written as raw blocks,
  ``general.alignment`` 64, scalars of every GGUF value type, a long string.
- ``v2.gguf``: ``tiny_llama.gguf`` with its version field set to 2 (versions 2 and 3 share the
  layout).
"""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np

HERE = Path(__file__).resolve().parent
HIDDEN, FFN, VOCAB, HEADS, KV_HEADS = 32, 64, 16, 4, 2


def _values(shape: tuple[int, ...], dtype: type[np.generic]) -> np.ndarray:
    count = int(np.prod(shape))
    return (np.arange(count, dtype=np.float32) % 7).reshape(shape).astype(dtype)


def tiny_llama(path: Path) -> None:
    """A two-block Llama header in the converter's names and order."""
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("tiny-llama")
    writer.add_block_count(2)
    writer.add_context_length(256)
    writer.add_embedding_length(HIDDEN)
    writer.add_feed_forward_length(FFN)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(KV_HEADS)
    writer.add_vocab_size(VOCAB)
    writer.add_tokenizer_model("llama")
    writer.add_token_list([f"tok{i}" for i in range(VOCAB)])
    writer.add_token_scores([float(-i) for i in range(VOCAB)])
    writer.add_token_types([1] * VOCAB)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    writer.add_tensor("token_embd.weight", _values((VOCAB, HIDDEN), np.float16))
    for block in range(2):
        for name, shape in (("attn_norm", (HIDDEN,)), ("attn_q", (HIDDEN, HIDDEN)),
                            ("attn_k", (HIDDEN // 2, HIDDEN)), ("attn_v", (HIDDEN // 2, HIDDEN)),
                            ("attn_output", (HIDDEN, HIDDEN)), ("ffn_norm", (HIDDEN,)),
                            ("ffn_gate", (FFN, HIDDEN)), ("ffn_up", (FFN, HIDDEN)),
                            ("ffn_down", (HIDDEN, FFN))):
            dtype = np.float32 if len(shape) == 1 else np.float16
            writer.add_tensor(f"blk.{block}.{name}.weight", _values(shape, dtype))
    writer.add_tensor("output_norm.weight", _values((HIDDEN,), np.float32))
    writer.add_tensor("output.weight", _values((VOCAB, HIDDEN), np.float16))
    _write(writer)


def quantized(path: Path) -> None:
    """Block types as raw blocks, a custom alignment, every scalar type."""
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_custom_alignment(64)
    writer.add_uint8("test.u8", 200)
    writer.add_int8("test.i8", -5)
    writer.add_uint16("test.u16", 60000)
    writer.add_int16("test.i16", -30000)
    writer.add_uint32("test.u32", 4_000_000_000)
    writer.add_int32("test.i32", -2_000_000_000)
    writer.add_float32("test.f32", 0.5)
    writer.add_uint64("test.u64", 2**63 + 1)
    writer.add_int64("test.i64", -(2**62))
    writer.add_float64("test.f64", 1e300)
    writer.add_bool("test.bool", True)
    writer.add_string("test.long", "x" * 1000)
    writer.add_array("test.small", [1, 2, 3])
    writer.add_array("test.many", list(range(100)))
    for name, qtype, shape in (("blk.0.attn_q.weight", gguf.GGMLQuantizationType.Q8_0, (4, 64)),
                               ("blk.0.attn_k.weight", gguf.GGMLQuantizationType.Q4_0, (2, 32)),
                               ("blk.0.ffn_up.weight", gguf.GGMLQuantizationType.Q4_K, (3, 256)),
                               ("blk.0.ffn_down.weight", gguf.GGMLQuantizationType.Q6_K,
                                (1, 2, 512))):
        per_block, block_bytes = gguf.GGML_QUANT_SIZES[qtype]
        raw_shape = (*shape[:-1], shape[-1] // per_block * block_bytes)
        data = (np.arange(int(np.prod(raw_shape))) % 251).astype(np.uint8).reshape(raw_shape)
        writer.add_tensor(name, data, raw_dtype=qtype)
    writer.add_tensor("blk.0.attn_norm.weight", _values((64,), np.float32))
    # 16 floats fill the last 64-byte block: no trailing padding, so any cut loses data (llama.cpp
    # accepts a file whose last padding is missing, and so does ckptdiff).
    writer.add_tensor("rope_freqs.weight", _values((16,), np.float32))
    _write(writer)


def _write(writer: gguf.GGUFWriter) -> None:
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def main() -> None:
    """Write every fixture next to this script."""
    tiny_llama(HERE / "tiny_llama.gguf")
    quantized(HERE / "quantized.gguf")
    data = bytearray((HERE / "tiny_llama.gguf").read_bytes())
    data[4:8] = (2).to_bytes(4, "little")
    (HERE / "v2.gguf").write_bytes(bytes(data))


if __name__ == "__main__":
    main()
