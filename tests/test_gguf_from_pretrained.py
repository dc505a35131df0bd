"""The ``from_pretrained(..., gguf_file=...)`` verdict against the real call: a tiny Llama written
with gguf's writer as ``convert_hf_to_gguf.py`` writes it (names, q/k permutation, metadata),
judged by ckptdiff and loaded by transformers, which must agree."""

from __future__ import annotations

from pathlib import Path

import pytest

import ckptdiff

gguf = pytest.importorskip("gguf", reason="the gguf package (pip install 'ckptdiff[gguf]')")
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
np = pytest.importorskip("numpy")
pytest.importorskip("accelerate", reason="from_pretrained(gguf_file=...) needs accelerate")

CONFIG = {"num_hidden_layers": 2, "hidden_size": 32, "intermediate_size": 64,
          "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 128}
CALL = "transformers.PreTrainedModel.from_pretrained(path, gguf_file=...)"


def _permute(array: object, heads: int) -> object:
    shape = array.shape  # type: ignore[attr-defined]
    return (array.reshape(heads, 2, shape[0] // heads // 2, *shape[1:])  # type: ignore[attr-defined]
            .swapaxes(1, 2).reshape(shape))


def convert(model: object, path: Path, *, metadata: bool = True, drop: str = "") -> Path:
    """The converter's LlamaModel: set_gguf_parameters' keys, then its tensors."""
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(CONFIG["num_hidden_layers"])
    if metadata:
        writer.add_context_length(2048)
        writer.add_embedding_length(CONFIG["hidden_size"])
        writer.add_feed_forward_length(CONFIG["intermediate_size"])
        writer.add_head_count(CONFIG["num_attention_heads"])
        writer.add_head_count_kv(CONFIG["num_key_value_heads"])
        writer.add_layer_norm_rms_eps(1e-6)
        writer.add_rope_freq_base(10000.0)
        writer.add_vocab_size(CONFIG["vocab_size"])
        writer.add_rope_dimension_count(CONFIG["hidden_size"] // CONFIG["num_attention_heads"])
    name_map = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, CONFIG["num_hidden_layers"])
    for name, tensor in model.state_dict().items():  # type: ignore[attr-defined]
        array = tensor.float().numpy()
        if name.endswith("q_proj.weight"):
            array = _permute(array, CONFIG["num_attention_heads"])
        if name.endswith("k_proj.weight"):
            array = _permute(array, CONFIG["num_key_value_heads"])
        new = name_map.get_name(name, try_suffixes=(".weight", ".bias"))
        if new != drop:
            writer.add_tensor(new, array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture(scope="module")
def llama() -> object:
    torch.manual_seed(0)
    config = transformers.LlamaConfig(**CONFIG, rms_norm_eps=1e-6)
    return transformers.LlamaForCausalLM(config).eval()


def _real_load(path: Path) -> tuple[object, dict[str, object]]:
    return transformers.LlamaForCausalLM.from_pretrained(  # type: ignore[no-any-return]
        str(path.parent), gguf_file=path.name, output_loading_info=True)


def test_a_converted_llama_loads_and_the_verdict_agrees(llama: object, tmp_path: Path) -> None:
    path = convert(llama, tmp_path / "model.gguf")
    report = ckptdiff.diff(path, llama)
    judged = report.verdicts[0]
    assert judged.loader == CALL and judged.default and judged.loads and report.compatible
    loaded, info = _real_load(path)
    assert not info["missing_keys"] and not info["mismatched_keys"]
    expected = llama.state_dict()  # type: ignore[attr-defined]
    assert all(torch.equal(value, expected[key])
               for key, value in loaded.state_dict().items())  # type: ignore[attr-defined]


def test_a_tensor_missing_from_the_gguf_is_not_filled(llama: object, tmp_path: Path) -> None:
    path = convert(llama, tmp_path / "model.gguf", drop="blk.1.ffn_up.weight")
    judged = ckptdiff.diff(path, llama).verdicts[0]
    assert judged.loader == CALL and not judged.loads
    assert judged.keys == ("blk.1.ffn_up.weight",)
    _, info = _real_load(path)
    assert set(info["missing_keys"]) == {"model.layers.1.mlp.up_proj.weight"}


def test_metadata_that_builds_another_model(llama: object, tmp_path: Path) -> None:
    path = convert(llama, tmp_path / "bare.gguf", metadata=False)
    judged = ckptdiff.diff(path, llama).verdicts[0]
    assert judged.loader == CALL and not judged.loads
    assert "builds the model from the GGUF's metadata" in judged.reason
    with pytest.raises(RuntimeError, match="ignore_mismatched_sizes"):
        _real_load(path)


def test_a_moe_gguf_is_left_to_key_parity(tmp_path: Path) -> None:
    from ckptdiff.loaders.gguf_pretrained import gguf_pretrained_judge

    source = ckptdiff.read(convert(transformers.LlamaForCausalLM(
        transformers.LlamaConfig(**CONFIG)), tmp_path / "model.gguf"))
    kv = {**source.metadata["gguf"]["kv"], "llama.expert_count": 4}
    moe = type(source)(path=source.path, format=source.format, tensors=source.tensors,
                       metadata={**source.metadata, "gguf": {**source.metadata["gguf"], "kv": kv}})
    target = ckptdiff.resolve(transformers.LlamaForCausalLM(transformers.LlamaConfig(**CONFIG)))
    from ckptdiff.targets.gguf_names import in_gguf_key_space

    _, renamed = in_gguf_key_space(moe, target)
    assert gguf_pretrained_judge(source, renamed) is not None
    assert gguf_pretrained_judge(moe, renamed) is None


def test_a_type_gguf_cannot_dequantize_fails_the_verdict(llama: object, tmp_path: Path) -> None:
    from dataclasses import replace

    from ckptdiff.loaders.gguf_pretrained import gguf_pretrained_judge
    from ckptdiff.targets.gguf_names import in_gguf_key_space

    source = ckptdiff.read(convert(llama, tmp_path / "model.gguf"))
    key = "blk.0.ffn_down.weight"
    q8_k = replace(source, tensors=tuple(replace(t, dtype="q8_k") if t.key == key else t
                                         for t in source.tensors))
    with pytest.raises(NotImplementedError):  # the oracle: what from_pretrained would call
        block = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType.Q8_K][1]
        gguf.dequantize(np.zeros(block, dtype=np.uint8), gguf.GGMLQuantizationType.Q8_K)
    _, renamed = in_gguf_key_space(q8_k, ckptdiff.resolve(llama))
    judged = gguf_pretrained_judge(q8_k, renamed)
    assert judged is not None and not judged.verdict.loads
    assert judged.verdict.keys == (key,) and "q8_k" in judged.verdict.reason
