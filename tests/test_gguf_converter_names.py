"""GGUF names as ``convert_hf_to_gguf.py``'s ``LlamaModel`` really gives them: Mixtral experts
stacked into ``blk.N.ffn_{gate,up,down}_exps.weight``, a headless ``LlamaModel``, the
``text_model.`` / vision handling, and generated tensors (``rope_freqs.weight``). Each GGUF is
written with ``gguf.GGUFWriter`` from the files ``save_pretrained`` wrote, as the converter
reads them, then diffed against the live transformers model and those files."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.helpers import manifest, t

import ckptdiff
from ckptdiff.diffing.compare import GENERATED_NOTE
from ckptdiff.targets.gguf_names import hf_architecture, to_gguf_names

gguf = pytest.importorskip("gguf", reason="the gguf package (pip install 'ckptdiff[gguf]')")
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
np = pytest.importorskip("numpy")

BASE = {"num_hidden_layers": 2, "hidden_size": 32, "intermediate_size": 64,
        "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 128}
EXPERTS = 4
_HUB_EXPERT = "model.layers.{b}.block_sparse_moe.experts.{x}.{w}.weight"


def _hub_state(model: object, tmp_path: Path) -> dict[str, object]:
    from safetensors.numpy import load_file

    model.save_pretrained(tmp_path / "hf")  # type: ignore[attr-defined]
    return dict(load_file(str(tmp_path / "hf" / "model.safetensors")))


def convert(state: dict[str, object], path: Path, *, experts: int | None = None,
            headless: bool = False, extra: dict[str, object] | None = None,
            drop: str | None = None) -> Path:
    """GGUFWriter fed as LlamaModel.modify_tensors feeds it (names only: values are as saved)."""
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(BASE["num_hidden_layers"])
    # set_gguf_parameters' keys: transformers builds its config from them
    writer.add_context_length(2048)
    writer.add_embedding_length(BASE["hidden_size"])
    writer.add_feed_forward_length(BASE["intermediate_size"])
    writer.add_head_count(BASE["num_attention_heads"])
    writer.add_head_count_kv(BASE["num_key_value_heads"])
    writer.add_vocab_size(BASE["vocab_size"])
    writer.add_rope_dimension_count(BASE["hidden_size"] // BASE["num_attention_heads"])
    if experts is not None:
        writer.add_expert_count(experts)
    name_map = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, BASE["num_hidden_layers"])
    pending = dict(state)
    for block in range(BASE["num_hidden_layers"]):
        for wid in ("w1", "w2", "w3"):
            names = [_HUB_EXPERT.format(b=block, x=x, w=wid) for x in range(experts or 0)]
            if names and all(n in pending for n in names):
                merged = np.stack([pending.pop(n) for n in names])
                new = name_map.get_name(f"layers.{block}.feed_forward.experts.{wid}.weight",
                                        try_suffixes=(".weight", ".bias"))
                if new != drop:
                    writer.add_tensor(new, merged)
    for name, array in pending.items():
        new = name_map.get_name(("model." + name) if headless else name,
                                try_suffixes=(".weight", ".bias"))
        if new is None:
            raise ValueError(f"Can not map tensor {name!r}")
        writer.add_tensor(new, array)
    for name, array in (extra or {}).items():
        writer.add_tensor(name, array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture(scope="module")
def mixtral() -> object:
    torch.manual_seed(0)
    config = transformers.MixtralConfig(**BASE, num_local_experts=EXPERTS, num_experts_per_tok=2)
    return transformers.MixtralForCausalLM(config).eval()


def test_mixtral_experts_stack_into_one_tensor_per_block(mixtral: object,
                                                         tmp_path: Path) -> None:
    path = convert(_hub_state(mixtral, tmp_path), tmp_path / "moe.gguf", experts=EXPERTS)
    stored = ckptdiff.read(path)
    assert stored["blk.1.ffn_gate_exps.weight"].shape == (EXPERTS, 64, 32)
    assert stored["blk.1.ffn_down_exps.weight"].shape == (EXPERTS, 32, 64)
    # The live v5 model holds gate_up_proj [E, 128, 32]: split as its save_pretrained splits it.
    for target in (mixtral, tmp_path / "hf" / "model.safetensors", tmp_path / "hf"):
        report = ckptdiff.diff(path, target)
        assert report.compatible, [(f.kind, f.key, f.note) for f in report.findings]
        assert report.matched == len(stored) == 2 * 10 + 3 and not report.findings
    renamed = to_gguf_names(ckptdiff.resolve(mixtral), "llama", 2, expert_count=EXPERTS)
    assert renamed["blk.0.ffn_up_exps.weight"].variable_name == (
        "model.layers.0.mlp.experts.gate_up_proj")


def test_a_missing_expert_stack_and_an_unfinished_block(mixtral: object, tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    state = _hub_state(mixtral, tmp_path)
    path = convert(state, tmp_path / "moe.gguf", experts=EXPERTS, drop="blk.1.ffn_up_exps.weight")
    report = ckptdiff.diff(path, mixtral)
    assert [(f.kind, f.key) for f in report.findings] == [("missing", "blk.1.ffn_up_exps.weight")]
    assert not report.compatible
    whole = convert(state, tmp_path / "whole.gguf", experts=EXPERTS)
    state.pop(_HUB_EXPERT.format(b=1, x=2, w="w3"))  # the converter cannot stack block 1
    save_file(state, str(tmp_path / "partial.safetensors"))
    report = ckptdiff.diff(whole, tmp_path / "partial.safetensors")
    # The GGUF is the source: the unstacked Hugging Face keys are what the target "expects".
    unfinished = {f.key for f in report.findings if f.kind == "missing"}
    assert len(unfinished) == EXPERTS * 3 - 1 and all(
        key.startswith("model.layers.1.block_sparse_moe.experts.") for key in unfinished)
    assert all("Unprocessed experts" in (f.note or "") for f in report.findings
               if f.kind == "missing")
    unexpected = {f.key for f in report.findings if f.kind == "unexpected"}
    assert unexpected == {f"blk.1.ffn_{w}_exps.weight" for w in ("gate", "up", "down")}


def test_a_headless_llama_model(tmp_path: Path) -> None:
    model = transformers.LlamaModel(transformers.LlamaConfig(**BASE))
    path = convert(_hub_state(model, tmp_path), tmp_path / "headless.gguf", headless=True)
    for target in (model, tmp_path / "hf"):
        report = ckptdiff.diff(path, target)
        assert report.compatible and report.matched == 2 * 9 + 2 and not report.findings
    live = ckptdiff.resolve(model)
    assert hf_architecture(live) == hf_architecture(ckptdiff.read(tmp_path / "hf")) == (
        "LlamaModel")
    facts = to_gguf_names(live, "llama", 2, hf_architecture="LlamaModel").metadata["gguf_names"]
    assert facts["mapped"] == 20 and not facts["unmapped"]


def test_text_model_prefix_and_vision_tensors() -> None:
    hub = manifest(t("model.text_model.layers.0.mlp.up_proj.weight", 64, 32),
                   t("model.text_model.embed_tokens.weight", 128, 32),
                   t("model.vision_model.encoder.layers.0.mlp.fc1.weight", 8, 8),
                   t("language_model.model.norm.weight", 32))
    renamed = to_gguf_names(hub, "llama", 2)
    assert {"blk.0.ffn_up.weight", "token_embd.weight", "output_norm.weight"} <= set(
        renamed.keys())
    facts = renamed.metadata["gguf_names"]
    assert facts["vision"] == ["model.vision_model.encoder.layers.0.mlp.fc1.weight"]
    assert facts["unmapped"] == [] and facts["mapped"] == 3


def test_generated_rope_freqs_is_info(tmp_path: Path) -> None:
    rope = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 64}
    model = transformers.LlamaForCausalLM(transformers.LlamaConfig(**BASE, rope_scaling=rope))
    head_dim = BASE["hidden_size"] // BASE["num_attention_heads"]
    freqs = {"rope_freqs.weight": np.ones(head_dim // 2, dtype=np.float32)}
    path = convert(_hub_state(model, tmp_path), tmp_path / "llama3.gguf", extra=freqs)
    for target in (model, tmp_path / "hf" / "model.safetensors"):
        report = ckptdiff.diff(path, target)
        assert report.compatible
        assert [(f.kind, f.key, f.severity, f.note) for f in report.findings] == [
            ("unexpected", "rope_freqs.weight", "info", GENERATED_NOTE)]
        assert report.verdicts[0].loads
