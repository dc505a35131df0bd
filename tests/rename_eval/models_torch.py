"""Evaluation cases from torch ``nn`` models and transformers models with small configs.

Each builder returns (name, description, source manifest, target manifest, truth); truth is a
function from a source key to its true target key, a list of pairs, or (pairs, ambiguous pairs).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

import ckptdiff
from ckptdiff.dtypes import TORCH_DTYPES
from ckptdiff.manifest import Manifest, TensorInfo

Case = tuple[str, str, Manifest, Manifest, Any]


def state_manifest(state: dict[str, torch.Tensor], label: str = "ckpt.pth") -> Manifest:
    """A checkpoint's manifest from its state dict (keys, shapes, dtypes, tied storages)."""
    owners: dict[int, list[str]] = {}
    for key, value in state.items():
        owners.setdefault(value.untyped_storage().data_ptr(), []).append(key)
    tensors = []
    for key, value in state.items():
        shared = owners[value.untyped_storage().data_ptr()]
        tensors.append(TensorInfo(key=key, shape=tuple(value.shape),
                                  dtype=TORCH_DTYPES[str(value.dtype).removeprefix("torch.")],
                                  aliases=tuple(k for k in shared if k != key)))
    return Manifest(path=label, format="torch-zip", tensors=tuple(tensors))


def target(model: Any) -> Manifest:
    """What ckptdiff's live torch target says the model expects."""
    return ckptdiff.resolve(model)


def cnn(width: int = 8, classes: int = 10) -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, width, 3), nn.BatchNorm2d(width), nn.ReLU(),
                         nn.Conv2d(width, 2 * width, 3), nn.BatchNorm2d(2 * width), nn.ReLU(),
                         nn.Flatten(), nn.Linear(2 * width * 4, classes))


class Block(nn.Module):
    """A small pre-norm transformer block; ``attn_name``/``norm`` vary between 'versions'."""

    def __init__(self, dim: int = 16, attn_name: str = "attn", norm: str = "ln") -> None:
        super().__init__()
        setattr(self, f"{norm}_1", nn.LayerNorm(dim))
        setattr(self, attn_name, nn.MultiheadAttention(dim, 2))
        setattr(self, f"{norm}_2", nn.LayerNorm(dim))
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))


class Tiny(nn.Module):
    """Embedding, a stack of blocks, a head."""

    def __init__(self, depth: int = 3, **block: Any) -> None:
        super().__init__()
        self.embed = nn.Embedding(50, 16)
        self.blocks = nn.ModuleList([Block(**block) for _ in range(depth)])
        self.head = nn.Linear(16, 5)


class Wrap(nn.Module):
    """A wrapper that holds a model under ``name`` (Lightning's ``model``, FSDP, EMA…)."""

    def __init__(self, model: nn.Module, name: str) -> None:
        super().__init__()
        setattr(self, name, model)


def strip(prefix: str) -> Callable[[str], str | None]:
    return lambda key: key[len(prefix):] if key.startswith(prefix) else None


def drop(pattern: str) -> Callable[[str], str | None]:
    return lambda key: re.sub(pattern, "", key)


def bert(cls_name: str = "BertModel", **overrides: Any) -> nn.Module:
    import transformers

    config = transformers.BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=2,
                                     num_attention_heads=2, intermediate_size=32,
                                     max_position_embeddings=32, **overrides)
    return getattr(transformers, cls_name)(config)


def gpt2(cls_name: str = "GPT2Model") -> nn.Module:
    import transformers

    config = transformers.GPT2Config(vocab_size=64, n_embd=16, n_layer=2, n_head=2, n_positions=32)
    return getattr(transformers, cls_name)(config)


def llama(cls_name: str) -> nn.Module:
    import transformers

    config = transformers.LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32,
                                      num_hidden_layers=2, num_attention_heads=2,
                                      num_key_value_heads=2, max_position_embeddings=32)
    return getattr(transformers, cls_name)(config)


def dataparallel(tmp: Path) -> Case:
    model = cnn()
    return ("dataparallel_cnn", "nn.DataParallel checkpoint into the bare model",
            state_manifest(nn.DataParallel(model).state_dict()), target(model), strip("module."))


def compiled(tmp: Path) -> Case:
    model = Tiny()
    return ("torch_compile", "torch.compile(model).state_dict() into the bare model",
            state_manifest(torch.compile(model).state_dict()), target(model), strip("_orig_mod."))


def compiled_dataparallel(tmp: Path) -> Case:
    model = cnn()
    source = nn.DataParallel(torch.compile(model)).state_dict()
    return ("dataparallel_of_compiled", "stacked wrappers: module._orig_mod.",
            state_manifest(source), target(model), strip("module._orig_mod."))


def lightning(tmp: Path) -> Case:
    model = Tiny()
    return ("lightning_model_prefix", "a LightningModule's state_dict (self.model) into the model",
            state_manifest(Wrap(model, "model").state_dict()), target(model), strip("model."))


def lightning_reverse(tmp: Path) -> Case:
    model = cnn()
    return ("lightning_add_prefix", "plain weights into a LightningModule holding self.model",
            state_manifest(model.state_dict()), target(Wrap(model, "model")),
            lambda k: "model." + k)


def fsdp_nested(tmp: Path) -> Case:
    model = Tiny()
    wrapped = Tiny()
    wrapped.blocks = nn.ModuleList([Wrap(b, "_fsdp_wrapped_module") for b in wrapped.blocks])
    source = Wrap(wrapped, "_fsdp_wrapped_module").state_dict()
    return ("fsdp_nested_wrappers", "_fsdp_wrapped_module at the root and around every block",
            state_manifest(source), target(model), drop(r"_fsdp_wrapped_module\."))


def checkpoint_wrapped(tmp: Path) -> Case:
    from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import checkpoint_wrapper

    model = Tiny()
    wrapped = Tiny()
    wrapped.blocks = nn.ModuleList([checkpoint_wrapper(b) for b in wrapped.blocks])
    # state_dict() hides the wrapper; trainers that save named_parameters() keep it.
    saved = dict(wrapped.named_parameters()) | dict(wrapped.named_buffers())
    return ("checkpoint_wrapper", "activation checkpointing wrappers inside the keys",
            state_manifest(saved), target(model),
            drop(r"_checkpoint_wrapped_module\."))


class LoraLinear(nn.Module):
    """PEFT's LoRA layer layout: base_layer, lora_A.default, lora_B.default."""

    def __init__(self, base: nn.Linear, rank: int = 2) -> None:
        super().__init__()
        self.base_layer = base
        self.lora_A = nn.ModuleDict({"default": nn.Linear(base.in_features, rank, bias=False)})
        self.lora_B = nn.ModuleDict({"default": nn.Linear(rank, base.out_features, bias=False)})


def peft_model(model: nn.Module) -> nn.Module:
    for layer in model.encoder.layer:
        attention = layer.attention.self
        attention.query = LoraLinear(attention.query)
        attention.value = LoraLinear(attention.value)
    return Wrap(Wrap(model, "model"), "base_model")


def peft_to_base(tmp: Path) -> Case:
    source = peft_model(bert()).state_dict()
    return ("peft_lora_to_base", "PEFT LoRA checkpoint (base_model.model., .base_layer) into BERT",
            state_manifest(source), target(bert()),
            drop(r"^base_model\.model\.|base_layer\."))


def base_to_peft(tmp: Path) -> Case:
    return ("base_to_peft_lora", "BERT weights into a PEFT LoRA model (adapters stay missing)",
            state_manifest(bert().state_dict()), target(peft_model(bert())),
            lambda k: "base_model.model." + re.sub(r"\.(query|value)\.", r".\1.base_layer.", k))


def legacy_layernorm(key: str) -> str:
    return re.sub(r"LayerNorm\.weight$", "LayerNorm.gamma", re.sub(r"LayerNorm\.bias$",
                                                                   "LayerNorm.beta", key))


def unlegacy(key: str) -> str:
    return key.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta",
                                                                      "LayerNorm.bias")


def bert_legacy(tmp: Path) -> Case:
    state = {legacy_layernorm(k): v for k, v in bert().state_dict().items()}
    return ("bert_legacy_layernorm", "old HF BERT checkpoint: LayerNorm gamma/beta",
            state_manifest(state), target(bert()), unlegacy)


def dp_bert_legacy(tmp: Path) -> Case:
    state = {"module." + legacy_layernorm(k): v for k, v in bert().state_dict().items()}
    return ("dataparallel_bert_legacy", "module. prefix and LayerNorm gamma/beta together",
            state_manifest(state), target(bert()), lambda k: unlegacy(k.removeprefix("module.")))


def bert_cls_to_base(tmp: Path) -> Case:
    return ("bert_classifier_to_base", "BertForSequenceClassification into BertModel",
            state_manifest(bert("BertForSequenceClassification").state_dict()), target(bert()),
            strip("bert."))


def bert_base_to_cls(tmp: Path) -> Case:
    return ("bert_base_to_classifier", "BertModel weights into BertForSequenceClassification",
            state_manifest(bert().state_dict()), target(bert("BertForSequenceClassification")),
            lambda k: "bert." + k)


def gpt2_head_to_base(tmp: Path) -> Case:
    return ("gpt2_lmhead_to_base", "GPT2LMHeadModel into GPT2Model (lm_head is tied, dropped)",
            state_manifest(gpt2("GPT2LMHeadModel").state_dict()), target(gpt2()),
            strip("transformer."))


def llama_causal_to_base(tmp: Path) -> Case:
    return ("llama_causal_to_base", "LlamaForCausalLM into LlamaModel",
            state_manifest(llama("LlamaForCausalLM").state_dict()), target(llama("LlamaModel")),
            strip("model."))


def wav2vec2_weight_norm(tmp: Path) -> Case:
    import transformers

    config = transformers.Wav2Vec2Config(
        hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        conv_dim=(8, 8), conv_stride=(5, 2), conv_kernel=(10, 3), num_conv_pos_embeddings=4,
        num_conv_pos_embedding_groups=2, vocab_size=32)
    model = transformers.Wav2Vec2Model(config)
    old = {k.replace("parametrizations.weight.original0", "weight_g")
            .replace("parametrizations.weight.original1", "weight_v"): v
           for k, v in model.state_dict().items()}
    return ("wav2vec2_legacy_weight_norm", "HF Wav2Vec2 before torch parametrizations",
            state_manifest(old), target(model),
            lambda k: k.replace("weight_g", "parametrizations.weight.original0")
            .replace("weight_v", "parametrizations.weight.original1"))


def wn_net(new: bool) -> nn.Module:
    norm = (nn.utils.parametrizations.weight_norm if new else nn.utils.weight_norm)
    return nn.Sequential(norm(nn.Conv1d(4, 8, 3)), nn.ReLU(), norm(nn.Conv1d(8, 8, 3)),
                         nn.ReLU(), nn.Flatten(), norm(nn.Linear(16, 3)))


def weight_norm_legacy(tmp: Path) -> Case:
    torch.manual_seed(0)
    return ("weight_norm_legacy_to_new", "torch.nn.utils.weight_norm into parametrizations",
            state_manifest(wn_net(False).state_dict()), target(wn_net(True)),
            lambda k: k.replace("weight_g", "parametrizations.weight.original0")
            .replace("weight_v", "parametrizations.weight.original1"))


def weight_norm_new(tmp: Path) -> Case:
    return ("weight_norm_new_to_legacy", "parametrizations weight norm into the legacy layout",
            state_manifest(wn_net(True).state_dict()), target(wn_net(False)),
            lambda k: k.replace("parametrizations.weight.original0", "weight_g")
            .replace("parametrizations.weight.original1", "weight_v"))


def attn_renamed(tmp: Path) -> Case:
    return ("attn_to_attention", "model code renamed its 'attn' submodule to 'attention'",
            state_manifest(Tiny(attn_name="attn").state_dict()),
            target(Tiny(attn_name="attention")),
            lambda k: k.replace(".attn.", ".attention."))


def ln_renamed(tmp: Path) -> Case:
    return ("ln_to_norm", "model code renamed ln_1/ln_2 to norm_1/norm_2",
            state_manifest(Tiny(norm="ln").state_dict()), target(Tiny(norm="norm")),
            lambda k: k.replace(".ln_", ".norm_"))


def encoder_to_backbone(tmp: Path) -> Case:
    model = Wrap(Tiny(), "backbone")
    return ("encoder_to_backbone", "a wrapper attribute renamed from 'encoder' to 'backbone'",
            state_manifest(Wrap(Tiny(), "encoder").state_dict()), target(model),
            lambda k: "backbone." + k.removeprefix("encoder."))


def mlp(widths: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(widths, widths[1:], strict=False):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def shifted(mapping: dict[int, int]) -> Callable[[str], str | None]:
    def rename(key: str) -> str | None:
        index, _, rest = key.partition(".")
        return f"{mapping[int(index)]}.{rest}" if int(index) in mapping else None
    return rename


def inserted_layer(tmp: Path) -> Case:
    return ("sequential_inserted_layer", "a Linear+ReLU inserted in the middle of a Sequential",
            state_manifest(mlp([4, 8, 16, 2]).state_dict()), target(mlp([4, 8, 8, 16, 2])),
            shifted({2: 4, 4: 6}))


def removed_layer(tmp: Path) -> Case:
    return ("sequential_removed_layer", "a Linear+ReLU removed from the middle of a Sequential",
            state_manifest(mlp([4, 8, 8, 16, 2]).state_dict()), target(mlp([4, 8, 16, 2])),
            shifted({4: 2, 6: 4}))


class Stack(nn.Module):
    """A ModuleList of blocks of different widths."""

    def __init__(self, widths: list[int]) -> None:
        super().__init__()
        self.stages = nn.ModuleList(
            nn.Sequential(nn.Conv2d(a, b, 3), nn.BatchNorm2d(b))
            for a, b in zip(widths, widths[1:], strict=False))


def inserted_stage(tmp: Path) -> Case:
    source = Stack([3, 8, 16, 32])
    model = Stack([3, 3, 8, 16, 32])
    return ("modulelist_inserted_stage", "a stage inserted at the front of a ModuleList",
            state_manifest(source.state_dict()), target(model),
            lambda k: re.sub(r"^stages\.(\d+)", lambda m: f"stages.{int(m[1]) + 1}", k))


def identical_removed(tmp: Path) -> Case:
    return ("identical_layers_removed", "negative: one of four identical layers removed",
            state_manifest(mlp([8, 8, 8, 8, 8]).state_dict()), target(mlp([8, 8, 8, 8])), [])


def bert_vs_gpt2(tmp: Path) -> Case:
    return ("bert_vs_gpt2", "negative: two architectures, same sizes, different names",
            state_manifest(bert().state_dict()), target(gpt2()), [])


class Pooled(nn.Module):
    def __init__(self, pooler: bool) -> None:
        super().__init__()
        self.encoder = Tiny()
        if pooler:
            self.pooler = nn.Linear(16, 16)
        else:
            self.head = nn.Linear(16, 16)


def pooler_replaced(tmp: Path) -> Case:
    return ("pooler_removed_head_added", "negative: a layer removed and an unrelated one added",
            state_manifest(Pooled(True).state_dict()), target(Pooled(False)), [])


class SmallMLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(12, 32)
        self.fc = nn.Linear(32, 10)


def cnn_vs_mlp(tmp: Path) -> Case:
    return ("cnn_vs_mlp", "negative: different architectures that share the name 'fc'",
            state_manifest(Wrap(cnn(), "fc").state_dict()), target(SmallMLP()), [])


class Twins(nn.Module):
    def __init__(self, names: tuple[str, str]) -> None:
        super().__init__()
        for name in names:
            setattr(self, name, nn.Linear(8, 8))
        self.shared = nn.Linear(8, 4)


def twins_renamed(tmp: Path) -> Case:
    pairs = [("left.weight", "alpha.weight"), ("left.bias", "alpha.bias"),
             ("right.weight", "beta.weight"), ("right.bias", "beta.bias")]
    return ("twins_renamed_ambiguous", "negative: two same-shaped branches renamed arbitrarily",
            state_manifest(Twins(("left", "right")).state_dict()),
            target(Twins(("alpha", "beta"))), ([], pairs))


class Deep(nn.Module):
    def __init__(self, blocks: int) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3)
        self.layer1 = nn.Sequential(*[nn.Sequential(nn.Conv2d(8, 8, 3), nn.BatchNorm2d(8))
                                      for _ in range(blocks)])
        self.fc = nn.Linear(8, 10)


def shallow_vs_deep(tmp: Path) -> Case:
    return ("shallow_into_deeper", "negative: a deeper variant (resnet18 vs 34 style)",
            state_manifest(Deep(2).state_dict()), target(Deep(3)), [])


TORCH_CASES = (
    dataparallel, compiled, compiled_dataparallel, lightning, lightning_reverse, fsdp_nested,
    checkpoint_wrapped, peft_to_base, base_to_peft, bert_legacy, dp_bert_legacy,
    bert_cls_to_base, bert_base_to_cls, gpt2_head_to_base, llama_causal_to_base,
    wav2vec2_weight_norm, weight_norm_legacy, weight_norm_new, attn_renamed, ln_renamed,
    encoder_to_backbone, inserted_layer, removed_layer, inserted_stage, identical_removed,
    bert_vs_gpt2, pooler_replaced, cnn_vs_mlp, twins_renamed, shallow_vs_deep,
)


def dataparallel_inserted(tmp: Path) -> Case:
    source = {"module." + k: v for k, v in mlp([4, 8, 16, 2]).state_dict().items()}
    shift = shifted({0: 0, 2: 4, 4: 6})
    return ("dataparallel_inserted_layer", "module. prefix and a layer inserted together",
            state_manifest(source), target(mlp([4, 8, 8, 16, 2])),
            lambda k: shift(k.removeprefix("module.")))


def bert_cls_legacy(tmp: Path) -> Case:
    state = {legacy_layernorm(k): v
             for k, v in bert("BertForSequenceClassification").state_dict().items()}
    return ("bert_classifier_legacy_to_base", "bert. prefix and legacy gamma/beta together",
            state_manifest(state), target(bert()),
            lambda k: unlegacy(k[len("bert."):]) if k.startswith("bert.") else None)


def resized_head(tmp: Path) -> Case:
    source = nn.DataParallel(cnn(classes=5)).state_dict()
    return ("dataparallel_resized_head", "module. prefix; the head has another size (unpaired)",
            state_manifest(source), target(cnn(classes=10)),
            lambda k: None if k.startswith("module.7.") else k.removeprefix("module."))


def peft_llama(tmp: Path) -> Case:
    model = llama("LlamaForCausalLM")
    for layer in model.model.layers:
        layer.self_attn.q_proj = LoraLinear(layer.self_attn.q_proj)
        layer.self_attn.v_proj = LoraLinear(layer.self_attn.v_proj)
    source = Wrap(Wrap(model, "model"), "base_model").state_dict()
    return ("peft_lora_llama", "PEFT LoRA on a Llama's q_proj/v_proj into LlamaForCausalLM",
            state_manifest(source), target(llama("LlamaForCausalLM")),
            drop(r"^base_model\.model\.|base_layer\."))


META_NAMES = (
    (r"^model\.embed_tokens\.", "tok_embeddings."), (r"^model\.norm\.", "norm."),
    (r"^lm_head\.", "output."), (r"^model\.layers\.", "layers."),
    (r"\.self_attn\.q_proj\.", ".attention.wq."), (r"\.self_attn\.k_proj\.", ".attention.wk."),
    (r"\.self_attn\.v_proj\.", ".attention.wv."), (r"\.self_attn\.o_proj\.", ".attention.wo."),
    (r"\.mlp\.gate_proj\.", ".feed_forward.w1."), (r"\.mlp\.down_proj\.", ".feed_forward.w2."),
    (r"\.mlp\.up_proj\.", ".feed_forward.w3."), (r"\.input_layernorm\.", ".attention_norm."),
    (r"\.post_attention_layernorm\.", ".ffn_norm."),
)


def llama_meta(tmp: Path) -> Case:
    import transformers

    config = transformers.LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32,
                                      num_hidden_layers=4, num_attention_heads=2,
                                      num_key_value_heads=2, max_position_embeddings=32,
                                      tie_word_embeddings=False)
    model = transformers.LlamaForCausalLM(config)
    renamed = {}
    for key in model.state_dict():
        meta = key
        for pattern, replacement in META_NAMES:
            meta = re.sub(pattern, replacement, meta)
        renamed[meta] = key
    state = {meta: model.state_dict()[key] for meta, key in renamed.items()}
    truth = sorted(renamed.items())
    # Names say nothing (wq/wk/wv, w1/w3, the norms are same-shaped): every pair is ambiguous;
    # whatever is suggested must be true.
    return ("llama_meta_to_hf", "stress: Meta Llama names into HF Llama (mostly unknowable)",
            state_manifest(state), target(model), ([], truth))


class Headed(nn.Module):
    def __init__(self, wrapped: bool) -> None:
        super().__init__()
        self.body = Tiny()
        self.classifier: nn.Module = (nn.Sequential(nn.Dropout(0.1), nn.Linear(16, 3))
                                      if wrapped else nn.Linear(16, 3))


def head_wrapped(tmp: Path) -> Case:
    return ("head_wrapped_in_sequential", "the head became Sequential(Dropout, Linear)",
            state_manifest(Headed(False).state_dict()), target(Headed(True)),
            lambda k: k.replace("classifier.", "classifier.1."))


TORCH_CASES = (*TORCH_CASES, dataparallel_inserted, bert_cls_legacy, resized_head, peft_llama,
               llama_meta, head_wrapped)
