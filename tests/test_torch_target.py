"""Live torch models as targets: exactly what state_dict() holds, built on the meta device."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

import ckptdiff
from ckptdiff.errors import UsageError

torch = pytest.importorskip("torch", reason="torch is not installed")
nn = torch.nn


def cnn(width: int = 8, classes: int = 10) -> Any:
    return nn.Sequential(nn.Conv2d(3, width, 3), nn.BatchNorm2d(width), nn.ReLU(),
                         nn.Flatten(), nn.Linear(width * 4, classes))


class Tied(nn.Module):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(11, 4)
        self.head = nn.Linear(4, 11, bias=False)
        self.head.weight = self.embed.weight
        self.register_buffer("scale", torch.ones(4), persistent=False)


def test_cnn_keys_kinds_and_meta_build() -> None:
    manifest = ckptdiff.resolve(cnn)
    assert manifest.keys() == list(cnn().state_dict().keys())
    assert manifest.metadata["built_on"] == "meta"
    assert manifest.metadata["live_model"] is True
    kinds = {t.key: (t.kind, t.trainable, t.device) for t in manifest}
    assert kinds["0.weight"] == ("parameter", True, "cpu")
    assert kinds["1.running_mean"] == ("buffer", False, "cpu")
    assert manifest["1.num_batches_tracked"].dtype == "int64"
    assert manifest["4.weight"].shape == (10, 32)


def test_model_kwargs_and_instances() -> None:
    assert ckptdiff.resolve(cnn, model_kwargs={"classes": 3})["4.weight"].shape == (3, 32)
    model = cnn()
    model[0].weight.requires_grad_(False)
    manifest = ckptdiff.resolve(model)
    assert manifest["0.weight"].trainable is False
    assert manifest.metadata["built_on"] == "instance"
    with pytest.raises(UsageError):
        ckptdiff.resolve(model, model_kwargs={"classes": 3})


def test_tied_weights_and_non_persistent_buffers() -> None:
    manifest = ckptdiff.resolve(Tied)
    assert manifest["head.weight"].aliases == ("embed.weight",)
    assert manifest["embed.weight"].aliases == ("head.weight",)
    assert "scale" not in manifest
    assert manifest.metadata["non_persistent_buffers"] == ["scale"]


def test_spec_from_file_and_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "mymodels.py").write_text(textwrap.dedent("""
        from torch import nn
        def build(n=2):
            return nn.Linear(3, n)
        NOT_A_MODEL = 42
        def broken():
            raise RuntimeError("boom")
    """))
    monkeypatch.chdir(tmp_path)
    assert ckptdiff.resolve("mymodels.py:build")["weight"].shape == (2, 3)
    assert ckptdiff.resolve("mymodels:build", model_kwargs={"n": 5})["weight"].shape == (5, 3)
    for spec, message in [("mymodels.py:nope", "no attribute"), ("mymodels.py:NOT_A_MODEL", "int"),
                          ("mymodels.py:broken", "boom"), ("no_such_pkg.mod:x", "cannot import")]:
        with pytest.raises(UsageError, match=message):
            ckptdiff.resolve(spec)


def test_bert_from_transformers_tied_and_buffers() -> None:
    transformers = pytest.importorskip("transformers", reason="transformers is not installed")
    config = transformers.BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2,
                                     num_attention_heads=2, intermediate_size=37)
    model = transformers.BertForMaskedLM(config)
    manifest = ckptdiff.resolve(model)
    expected = model.state_dict()
    assert manifest.keys() == list(expected.keys())
    for key, value in expected.items():
        assert manifest[key].shape == tuple(value.shape)
    decoder = manifest["cls.predictions.decoder.weight"]
    assert "bert.embeddings.word_embeddings.weight" in decoder.aliases
    assert "bert.embeddings.position_ids" not in manifest
    assert "bert.embeddings.position_ids" in manifest.metadata["non_persistent_buffers"]
