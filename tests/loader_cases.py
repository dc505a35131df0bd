"""The generated matrix of the differential loader suite: tiny torch/transformers models, the
state dicts a user might hold for them, and the files those are saved as.

Each case is a model builder (the target), a mutation of the saved model's state dict, and a
file kind. Sentinels (NaN, -7) fill the target before loading, so "every tensor was filled"
is checked by value after the real loader ran.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn


class Tied(nn.Module):
    """An embedding tied to the output head (weights shared, as GPT-2 does)."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(11, 6)
        self.head = nn.Linear(6, 11, bias=False)
        self.head.weight = self.embed.weight


class Positions(nn.Module):
    """A non-persistent buffer beside weights (BERT's ``position_ids``)."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(4, 4)
        self.register_buffer("position_ids", torch.arange(8).unsqueeze(0), persistent=False)


def mlp() -> nn.Module:
    """Two linear layers."""
    return nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3))


def cnn() -> nn.Module:
    """Conv, BatchNorm, linear head."""
    return nn.Sequential(nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 3))


def weight_norm() -> nn.Module:
    """A linear layer under today's weight-norm parametrization."""
    return nn.Sequential(nn.utils.parametrizations.weight_norm(nn.Linear(4, 3)))


def old_weight_norm_state() -> OrderedDict[str, torch.Tensor]:
    """What the deprecated ``torch.nn.utils.weight_norm`` saved: ``weight_g``/``weight_v``."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        old = nn.Sequential(nn.utils.weight_norm(nn.Linear(4, 3)))
    return old.state_dict()


def bert() -> nn.Module:
    """A two-layer BERT with a classifier head."""
    from transformers import BertConfig, BertForSequenceClassification

    return BertForSequenceClassification(BertConfig(
        num_hidden_layers=2, hidden_size=32, num_attention_heads=2, intermediate_size=37,
        vocab_size=60, max_position_embeddings=16, num_labels=2))


def gpt2() -> nn.Module:
    """A two-layer GPT-2 language model (head tied to the embedding)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    return GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=16, n_head=2, vocab_size=50,
                                      n_positions=16))


MODELS: dict[str, Callable[[], nn.Module]] = {
    "mlp": mlp, "cnn_bn": cnn, "weight_norm": weight_norm, "tied": Tied,
    "buffer": Positions, "bert": bert, "gpt2": gpt2,
}


def _copy(state: OrderedDict[str, torch.Tensor],
          items: list[tuple[str, torch.Tensor]]) -> OrderedDict[str, torch.Tensor]:
    """A new state dict that keeps ``_metadata`` (as ``state_dict()`` and edits of it do)."""
    out: OrderedDict[str, torch.Tensor] = OrderedDict(items)
    metadata = getattr(state, "_metadata", None)
    if metadata is not None:
        out._metadata = metadata  # type: ignore[attr-defined]
    return out


def _last(state: OrderedDict[str, torch.Tensor], suffix: str = "") -> str:
    # weight-norm layers keep their weight as parametrizations.weight.original1
    return ([k for k in state if k.endswith(suffix)] or [k for k in state if state[k].ndim])[-1]


def mutate(name: str, state: OrderedDict[str, torch.Tensor],
           model: str) -> OrderedDict[str, torch.Tensor]:
    """``state`` changed the way mutation ``name`` says."""
    items = list(state.items())
    if name == "identity":
        return _copy(state, items)
    if name == "prefix":
        return _copy(state, [(f"module.{k}", v) for k, v in items])
    if name == "drop":
        dropped = _last(state, "weight")
        return _copy(state, [(k, v) for k, v in items if k != dropped])
    if name == "extra":
        return _copy(state, [*items, ("extra.weight", torch.ones(2, 2))])
    if name == "resized_head":
        key = _last(state, "weight")
        value = state[key]
        grown = torch.zeros((value.shape[0] + 1, *value.shape[1:]), dtype=value.dtype)
        return _copy(state, [(k, grown if k == key else v) for k, v in items])
    if name == "float64":
        return _copy(state, [(k, v.double() if v.is_floating_point() else v) for k, v in items])
    if name == "no_counter":  # num_batches_tracked deleted, _metadata kept
        return _copy(state, [(k, v) for k, v in items if not k.endswith("num_batches_tracked")])
    if name == "no_counter_plain":  # ... and rebuilt as a plain dict (no _metadata)
        return OrderedDict((k, v) for k, v in items if not k.endswith("num_batches_tracked"))
    if name == "stored_buffer":
        return _copy(state, [*items, ("position_ids", torch.arange(8).unsqueeze(0))])
    if name == "tied_once":
        twin = "lm_head.weight" if model == "gpt2" else "head.weight"
        return _copy(state, [(k, v) for k, v in items if k != twin])
    if name == "old_weight_norm":
        return old_weight_norm_state()
    raise ValueError(name)


GENERIC = ("identity", "prefix", "drop", "extra", "resized_head", "float64")
SPECIFIC = {"cnn_bn": ("no_counter", "no_counter_plain"), "buffer": ("stored_buffer",),
            "tied": ("tied_once",), "gpt2": ("tied_once",), "weight_norm": ("old_weight_norm",)}
FILES = ("zip", "zip_container", "legacy", "safetensors")


@dataclass(frozen=True)
class Case:
    """One differential case: model, mutation, file kind, and the loader judged by."""

    model: str
    mutation: str
    file: str
    loader: str | None = None  # None: ckptdiff's default for the file

    @property
    def name(self) -> str:
        """``cnn_bn-no_counter-zip`` (plus the loader where it is not the default)."""
        return "-".join([self.model, self.mutation, self.file, *([self.loader] if self.loader
                                                                  else [])])


def cases() -> list[Case]:
    """The whole matrix."""
    out = []
    for model in MODELS:
        for mutation in (*GENERIC, *SPECIFIC.get(model, ())):
            for file in FILES:
                if model in ("bert", "gpt2") and file == "legacy":
                    continue  # the zip format covers them; legacy pickles the same dict
                out.append(Case(model, mutation, file))
    for model in ("tied", "gpt2", "buffer", "mlp"):
        for mutation in ("drop", "extra", *SPECIFIC.get(model, ())):
            out.append(Case(model, mutation, "zip", "load_state_dict-nonstrict"))
    return out


def save(case: Case, state: OrderedDict[str, torch.Tensor], folder: Path) -> Path:
    """Write ``state`` as ``case.file`` says; the path ckptdiff and the loader read."""
    if case.file == "safetensors":
        from safetensors.torch import save_file

        path = folder / "model.safetensors"
        # save_file refuses shared storage: a tied pair is stored twice, as cloned tensors
        save_file({k: v.detach().clone().contiguous() for k, v in state.items()}, str(path))
        return path
    path = folder / ("model.pth" if case.file != "legacy" else "legacy.pt")
    payload: Any = {"state_dict": state, "epoch": 3} if case.file == "zip_container" else state
    torch.save(payload, path, _use_new_zipfile_serialization=case.file != "legacy")
    return path
