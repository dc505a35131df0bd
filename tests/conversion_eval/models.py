"""Tiny transformers models whose ``save_pretrained`` layout differs from ``state_dict()``.

Every model type here has rules in transformers' ``conversion_mapping.py``: ``save_pretrained``
writes the hub layout (experts one by one, fused ``Wqkv``, legacy names) by reversing them, and
``from_pretrained`` converts it back. That pair is the evaluation set: the saved file is the
source, the live model the target, and ``from_pretrained``'s tensors are the truth.

Weights are drawn at random (norms and biases too, which init would leave at ones and zeros), so
that every saved value is found again in exactly one loaded tensor.

The set is every model type of ``conversion_mapping.py`` (transformers 5.x as installed: its
``_build_checkpoint_conversion_mapping()`` keys and ``_MODEL_TO_CONVERSION_PATTERN`` aliases
that name a model type, 154) that builds tiny on the CPU from ``SMALL`` (plus the overrides
below) and whose ``save_pretrained`` keys differ from ``state_dict()``'s; chosen by that test
alone, never by how ckptdiff fares. Skipped, and why (tried with ``SMALL``, padding id 0 where
the default pad id fell outside the tiny vocabulary, MLA sizes for the MLA types):

- not tiny (composite models whose vision/audio/text sub-configs ignore ``SMALL``: millions to
  billions of parameters; or over 30 M parameters): altclip, aria, audioflamingo3, cohere_asr,
  cosmos3_edge, cosmos3_omni, dinov3_convnext, emu3, ernie4_5_vl_moe, gemma3, gemma4_unified,
  glm4v_moe, glmasr, got_ocr2, granite_speech, granite_speech_plus, hunyuan_vl, hy_v4_vl,
  hy_v4_vl_text, hyperclovax_vision_v2, inkling2, inkling2_loop, inkling2_loop_text,
  inkling_mm_model, internvl, kimi_k25, llava, llava_next, llava_next_video, llava_onevision,
  lw_detr, maskformer, minimax_m3_vl, mistral3, mistral_large4, mllama, molmo2, musicflamingo,
  nemo_speechlm, paddleocr_vl, paligemma, pi0, pp_doclayout_v4, qianfan_ocr,
  qwen2_5_omni_thinker, qwen2_audio, qwen3_omni_moe_thinker, qwen3_vl_moe, sam3_tracker,
  sam3_tracker_video, step3p7, tipsv2, unlimited_ocr, vibevoice_asr, video_llava, vipllava,
  voxtral, voxtral_realtime;
- the small config is refused (config validation, or shapes it makes impossible): d_fine,
  dots3_note_audio_encoder, glm5_next, glm5_next_text, gradium_phonon_tts, granitemoehybrid,
  pp_doclayout_v2, pp_doclayout_v3, rt_detr, rt_detr_v2, swin, aya_vision, deepseek_ocr2, dots1,
  dots3_note_vision_encoder, gemma3n_text, inkling2_text, lfm2_moe, t5gemma2_encoder;
- no ``AutoModel``/``AutoModelForCausalLM`` class for the config: colqwen2, jev, pp_chart2table,
  qwen3_omni_moe, qwen3_omni_moe_text, shieldgemma2, step3p5_vision, tipsv2_dpt;
- an optional dependency missing (``ImportError``): deformable_detr, timm_wrapper;
- tiny, but the saved keys equal ``state_dict()``'s (the rules do not fire at this size):
  apertus1p5_text, beam, lfm3, mlcd, qwen3_5_text;
- entries keyed by a class name (``CLIPVisionModel``, ``ViTModel``, …: 107 sub-models of
  composites and task heads): not tried.
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SMALL: dict[str, Any] = dict(
    hidden_size=16, intermediate_size=24, num_hidden_layers=2, num_attention_heads=2,
    num_key_value_heads=1, vocab_size=64, max_position_embeddings=64, head_dim=8,
    num_local_experts=3, num_experts=3, n_routed_experts=3, num_experts_per_tok=2,
    moe_intermediate_size=20, shared_expert_intermediate_size=28, tie_word_embeddings=False)

_MLA: dict[str, Any] = dict(q_lora_rank=8, kv_lora_rank=8, qk_rope_head_dim=4, qk_nope_head_dim=4,
                            v_head_dim=8)
# Per type: what the shared small config lacks or gets wrong for it.
_MOE_MLA: dict[str, Any] = dict(_MLA, first_k_dense_replace=1, n_group=1, topk_group=1)
_DSA: dict[str, Any] = dict(_MOE_MLA, index_n_heads=2, index_head_dim=8)
_PAD: dict[str, Any] = dict(pad_token_id=0)  # the default pad id is beyond the tiny vocabulary
MODEL_TYPES: dict[str, dict[str, Any]] = {
    "mixtral": {},
    "minimax": {},
    "phimoe": {},
    "qwen2_moe": {},
    "qwen3_moe": {},
    "olmoe": {},
    "hunyuan_v1_moe": {},
    "deepseek_v2": _MLA,
    "deepseek_v3": _MOE_MLA,
    "glm4_moe": {},
    "ernie4_5_moe": {},
    "jamba": {},
    "granitemoe": {},
    "nemotron_h": {},
    "exaone": {},
    "nomic_bert": {},
    "gte": {},
    "jina_embeddings_v3": {},
    # Added by going through conversion_mapping.py (see the module docstring).
    **{name: {} for name in (
        "afmoe", "aria_text", "axk1", "axk2", "cohere2_moe", "deepseek_v4", "dinov3_vit", "dory",
        "esm", "exaone_moe", "flint", "fuyu", "glm4_moe_lite", "granitemoeshared", "hrm_text",
        "hy_v3", "kolibri1", "laguna", "lara_mini", "lfm3_vl_vision", "longcat_flash", "mellum",
        "mimo_v2_flash", "minimax_m2", "mistral_large4_text", "pixio", "qwen3_5_moe_text",
        "qwen3_next", "qwen4_exp_text", "radio", "sapiens2", "sarvam_mla", "sarvam_moe",
        "solar_open", "timesfm2_5", "videomae", "yolos")},
    **{name: _PAD for name in ("bailing_hybrid", "flex_olmo", "olmo_hybrid", "hy_v4")},
    "kimi_linear": dict(_MLA, **_PAD, linear_head_dim=8, linear_num_heads=2),
    "deepseek_v32": _DSA,
    "glm_moe_dsa": _DSA,
}



@dataclass
class Case:
    """One model type's saved checkpoint and the tensors ``from_pretrained`` made of it."""

    name: str
    directory: Path
    checkpoint: Path  # the one safetensors file save_pretrained wrote
    model: Any  # the live model (the diff's target)
    saved: dict[str, Any]  # the checkpoint's tensors, as stored
    loaded: dict[str, Any]  # from_pretrained's state dict: the truth

    def fresh_model(self) -> Any:
        """A new model of the same config, its weights not those of the checkpoint."""
        return type(self.model)(self.model.config)


def build_case(name: str, root: Path) -> Case:
    """Build ``name`` tiny, randomize it, save it and load it back with ``from_pretrained``."""
    import torch
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

    logging.getLogger("transformers").setLevel(logging.ERROR)
    config = AutoConfig.for_model(name, **{**SMALL, **MODEL_TYPES[name]})
    torch.manual_seed(0)
    try:
        model = AutoModelForCausalLM.from_config(config)
    except ValueError:  # an encoder: no causal-LM head class
        model = AutoModel.from_config(config)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator))
    directory = root / name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.save_pretrained(directory)
        loaded = type(model).from_pretrained(directory).state_dict()
    (checkpoint,) = sorted(directory.glob("*.safetensors"))
    return Case(name, directory, checkpoint, model, load_file(str(checkpoint)),
                {k: v.detach().clone() for k, v in loaded.items()})


def build_all(root: Path | None = None, names: list[str] | None = None) -> list[Case]:
    """Every case (in ``root``, a temporary directory when not given)."""
    base = root if root is not None else Path(tempfile.mkdtemp(prefix="conversion_eval_"))
    return [build_case(name, base) for name in (names or list(MODEL_TYPES))]
