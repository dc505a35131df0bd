"""A GGUF diffed against the Hugging Face model it was converted from, in one key space: a tiny
Llama converted with gguf's writer the way ``convert_hf_to_gguf.py`` names, orders, permutes and
types its tensors, then diffed against the live transformers model and a safetensors file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import ckptdiff
from ckptdiff.errors import MissingDependencyError
from ckptdiff.targets.gguf_names import SKIPPED_SUFFIXES, to_gguf_names

gguf = pytest.importorskip("gguf", reason="the gguf package (pip install 'ckptdiff[gguf]')")
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

CONFIG = {"num_hidden_layers": 2, "hidden_size": 32, "intermediate_size": 64,
          "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 128}
BUILD = f'''
from transformers import LlamaConfig, LlamaForCausalLM

def build_llama(**overrides):
    return LlamaForCausalLM(LlamaConfig(**{{**{CONFIG!r}, **overrides}}))
'''


def _permute(weights: object, n_head: int, n_head_kv: int) -> object:
    # LlamaModel.permute of convert_hf_to_gguf.py: rows reordered per head, shape unchanged.
    if n_head != n_head_kv:
        n_head = n_head_kv
    shape = weights.shape  # type: ignore[attr-defined]
    return (weights.reshape(n_head, 2, shape[0] // n_head // 2, *shape[1:])  # type: ignore[attr-defined]
            .swapaxes(1, 2).reshape(shape))


def convert(state_dict: dict[str, object], path: Path, blocks: int = 2) -> Path:
    """Write ``state_dict`` as convert_hf_to_gguf.py's LlamaModel does (F16 file type)."""
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(blocks)
    # set_gguf_parameters' keys: transformers builds its config from them
    writer.add_context_length(2048)
    writer.add_embedding_length(CONFIG["hidden_size"])
    writer.add_feed_forward_length(CONFIG["intermediate_size"])
    writer.add_head_count(CONFIG["num_attention_heads"])
    writer.add_head_count_kv(CONFIG["num_key_value_heads"])
    writer.add_vocab_size(CONFIG["vocab_size"])
    writer.add_rope_dimension_count(CONFIG["hidden_size"] // CONFIG["num_attention_heads"])
    name_map = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, blocks)
    for name, tensor in state_dict.items():
        if name.endswith(SKIPPED_SUFFIXES):
            continue
        data = tensor.detach().float()  # type: ignore[attr-defined]
        if name.endswith("q_proj.weight"):
            data = _permute(data, CONFIG["num_attention_heads"], CONFIG["num_attention_heads"])
        if name.endswith("k_proj.weight"):
            data = _permute(data, CONFIG["num_attention_heads"], CONFIG["num_key_value_heads"])
        new_name = name_map.get_name(name, try_suffixes=(".weight", ".bias"))
        if new_name is None:
            raise ValueError(f"Can not map tensor {name!r}")
        array = data.numpy()  # type: ignore[attr-defined]
        if array.ndim > 1 and not new_name.endswith("_norm.weight"):
            array = array.astype("float16")
        writer.add_tensor(new_name, array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ckptdiff", *args], capture_output=True,
                          text=True)


@pytest.fixture(scope="module")
def llama() -> object:
    config = transformers.LlamaConfig(**CONFIG)
    torch.manual_seed(0)
    return transformers.LlamaForCausalLM(config).eval()


@pytest.fixture()
def model_file(tmp_path: Path) -> Path:
    path = tmp_path / "mypkg_models.py"
    path.write_text(BUILD)
    return path


def test_every_tensor_of_a_converted_llama_maps(llama: object, tmp_path: Path) -> None:
    path = convert(llama.state_dict(), tmp_path / "model.gguf")  # type: ignore[attr-defined]
    report = ckptdiff.diff(path, llama)
    assert report.compatible
    assert report.matched == 2 * 9 + 3 == len(ckptdiff.read(path))
    assert {f.kind for f in report.findings} == {"dtype"}  # f16 matrices vs float32
    assert all(f.severity == "warning" and "GGUF holds float16" in (f.note or "")
               for f in report.findings)


def test_cli_diff_of_a_gguf_and_a_model_spec(llama: object, model_file: Path,
                                             tmp_path: Path) -> None:
    path = convert(llama.state_dict(), tmp_path / "model.gguf")  # type: ignore[attr-defined]
    result = run_cli("diff", str(path), f"{model_file}:build_llama", "--format", "json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["summary"]["matched"] == 21
    assert document["summary"]["missing"] == document["summary"]["unexpected"] == 0
    table = run_cli("diff", str(path), f"{model_file}:build_llama", "--tree")
    assert table.returncode == 0 and "blk" in table.stdout, table.stderr


def test_a_converted_llama_against_a_safetensors_copy(llama: object, tmp_path: Path) -> None:
    from safetensors.torch import save_file

    state = llama.state_dict()  # type: ignore[attr-defined]
    path = convert(state, tmp_path / "model.gguf")
    save_file(state, str(tmp_path / "model.safetensors"))
    report = ckptdiff.diff(path, tmp_path / "model.safetensors")
    assert report.compatible and report.matched == 21
    assert {f.kind for f in report.findings} == {"dtype"}
    resized = transformers.LlamaForCausalLM(transformers.LlamaConfig(**{**CONFIG,
                                                                        "vocab_size": 96}))
    save_file(resized.state_dict(), str(tmp_path / "resized.safetensors"))
    report = ckptdiff.diff(path, tmp_path / "resized.safetensors")
    assert {(f.kind, f.key) for f in report.findings if f.severity == "error"} == {
        ("shape", "token_embd.weight"), ("shape", "output.weight")}


def test_a_tensor_the_converter_cannot_name_is_reported(llama: object, tmp_path: Path) -> None:
    from safetensors.torch import save_file

    state = {k: v.clone() for k, v in llama.state_dict().items()}  # type: ignore[attr-defined]
    path = convert(state, tmp_path / "model.gguf")
    state["model.layers.0.mlp.down_proj.weight_scale"] = torch.ones(1)
    save_file(state, str(tmp_path / "model.safetensors"))
    report = ckptdiff.diff(path, tmp_path / "model.safetensors")
    missing = [f for f in report.findings if f.kind == "missing"]
    assert [f.key for f in missing] == ["model.layers.0.mlp.down_proj.weight_scale"]
    assert "Can not map tensor 'model.layers.0.mlp.down_proj.weight_scale'" in (
        missing[0].note or "")
    assert not report.compatible and report.matched == 21


def test_a_layer_missing_from_the_gguf(llama: object, tmp_path: Path) -> None:
    state = {k: v for k, v in llama.state_dict().items()  # type: ignore[attr-defined]
             if "layers.1.mlp.up_proj" not in k}
    report = ckptdiff.diff(convert(state, tmp_path / "model.gguf"), llama)
    missing = [f.key for f in report.findings if f.kind == "missing"]
    assert missing == ["blk.1.ffn_up.weight"] and not report.compatible


def test_tied_embeddings_stored_once_are_info(tmp_path: Path) -> None:
    config = transformers.LlamaConfig(**CONFIG, tie_word_embeddings=True)
    model = transformers.LlamaForCausalLM(config)
    state = {k: v for k, v in model.state_dict().items() if k != "lm_head.weight"}
    report = ckptdiff.diff(convert(state, tmp_path / "tied.gguf"), model)
    output = next(f for f in report.findings if f.key == "output.weight")
    assert output.severity == "info" and output.tied_to == "token_embd.weight"


def test_renamed_manifest_keeps_the_hugging_face_name(llama: object) -> None:
    manifest = to_gguf_names(ckptdiff.resolve(llama), "llama", 2)
    assert manifest["blk.0.attn_q.weight"].variable_name == "model.layers.0.self_attn.q_proj.weight"
    assert manifest.metadata["gguf_names"]["mapped"] == 21


def test_without_the_gguf_package_one_line_names_the_extra(
        llama: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = convert(llama.state_dict(), tmp_path / "model.gguf")  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "gguf", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'ckptdiff\[gguf\]'"):
        ckptdiff.diff(path, llama)
