"""Tiny transformers models whose ``save_pretrained`` layout differs from ``state_dict()``.

Every model type here has rules in transformers' ``conversion_mapping.py``: ``save_pretrained``
writes the hub layout (experts one by one, fused ``Wqkv``, legacy names) by reversing them, and
``from_pretrained`` converts it back. That pair is the evaluation set: the saved file is the
source, the live model the target, and ``from_pretrained``'s tensors are the truth.

Weights are drawn at random (norms and biases too, which init would leave at ones and zeros), so
that every saved value is found again in exactly one loaded tensor.
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
MODEL_TYPES: dict[str, dict[str, Any]] = {
    "mixtral": {},
    "minimax": {},
    "phimoe": {},
    "qwen2_moe": {},
    "qwen3_moe": {},
    "olmoe": {},
    "hunyuan_v1_moe": {},
    "deepseek_v2": _MLA,
    "deepseek_v3": dict(_MLA, first_k_dense_replace=1, n_group=1, topk_group=1),
    "glm4_moe": {},
    "ernie4_5_moe": {},
    "jamba": {},
    "granitemoe": {},
    "nemotron_h": {},
    "exaone": {},
    "nomic_bert": {},
    "gte": {},
    "jina_embeddings_v3": {},
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
