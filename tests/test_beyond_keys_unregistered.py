"""``unregistered`` findings: tensors a live model holds where its framework never looks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

import ckptdiff

torch = pytest.importorskip("torch", reason="torch is not installed")
nn = torch.nn


class PlainTensor(nn.Module):  # type: ignore[misc]
    """Written the wrong way: a trainable tensor as a plain attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 4)
        self.beta = torch.randn(4, requires_grad=True)

    def forward(self, x: Any) -> Any:
        return self.linear(x) * self.beta


class PlainList(nn.Module):  # type: ignore[misc]
    """Written the wrong way: blocks in a Python list, heads in a dict, scales in a list."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks = [nn.Linear(4, 4), nn.Linear(4, 4)]
        self.heads = {"cls": nn.Linear(4, 2)}
        self.scales = [torch.ones(4)]
        self.first = nn.Linear(4, 4)
        self.shortcut = [self.first]  # a plain list that repeats a registered module: fine


class RightWay(nn.Module):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 4)
        self.beta = nn.Parameter(torch.randn(4))
        self.register_buffer("cache", torch.zeros(4), persistent=False)
        self.blocks = nn.ModuleList([nn.Linear(4, 4), nn.Linear(4, 4)])
        self.heads = nn.ModuleDict({"cls": nn.Linear(4, 2)})
        self.shortcut = [self.linear]
        self.rnn = nn.LSTM(4, 4)  # keeps its parameters in a plain list too (_flat_weights)
        self.norm = nn.utils.parametrizations.weight_norm(nn.Linear(3, 3))


def unregistered(target: Any) -> dict[str, Any]:
    report = ckptdiff.diff(ckptdiff.resolve(RightWay), target)
    return {f.key: f for f in report.findings if f.kind == "unregistered"}


def test_plain_tensor_attribute() -> None:
    found = unregistered(PlainTensor)
    assert set(found) == {"beta"}
    finding = found["beta"]
    assert finding.severity == "warning" and finding.source is None
    assert finding.target is not None and finding.target.shape == (4,)
    assert finding.note is not None
    assert finding.note.startswith("model.beta: a plain tensor attribute")
    assert "fix: self.beta = nn.Parameter(...)" in finding.note
    # The checkpoint of the right model has "beta": that key cannot load here.
    assert "the checkpoint has this key" in finding.note
    # What the finding claims is what torch does.
    model = PlainTensor()
    assert "beta" not in model.state_dict()
    assert all(p is not model.beta for p in model.parameters())


def test_modules_and_tensors_in_plain_containers() -> None:
    found = unregistered(PlainList)
    assert set(found) == {"blocks.0.weight", "blocks.0.bias", "blocks.1.weight",
                          "blocks.1.bias", "heads.cls.weight", "heads.cls.bias", "scales.0"}
    assert "fix: self.blocks = nn.ModuleList([...])" in str(found["blocks.0.weight"].note)
    assert "fix: self.heads = nn.ModuleDict({...})" in str(found["heads.cls.bias"].note)
    assert str(found["blocks.1.bias"].note).startswith("model.blocks[1]: a Linear in a plain "
                                                       "Python list")
    assert "register_buffer" in str(found["scales.0"].note)
    # Registered, these are exactly the keys state_dict() would have.
    registered = RightWay().state_dict()
    assert {k for k in found if k != "scales.0"} <= set(registered)
    assert not set(found) & set(PlainList().state_dict())


def test_model_written_the_right_way_has_none() -> None:
    assert unregistered(RightWay) == {}
    assert "unregistered" not in ckptdiff.resolve(RightWay).metadata


def test_old_weight_norm_attribute_is_not_reported() -> None:
    with pytest.warns(FutureWarning):
        model = nn.Sequential(nn.utils.weight_norm(nn.Linear(3, 3)))
    assert "unregistered" not in ckptdiff.resolve(model).metadata


def test_records_survive_a_snapshot(tmp_path: Path) -> None:
    snapshot = ckptdiff.snapshot(PlainTensor)
    path = tmp_path / "snap.json"
    path.write_text(snapshot.to_json())
    report = ckptdiff.diff(ckptdiff.resolve(PlainTensor), path)
    assert [f.key for f in report.findings if f.kind == "unregistered"] == ["beta"]


def test_json_validates(report_schema: dict[str, Any]) -> None:
    report = ckptdiff.diff(ckptdiff.resolve(RightWay), PlainList)
    document = json.loads(report.to_json())
    jsonschema.validate(document, report_schema)
    finding = next(f for f in document["findings"] if f["kind"] == "unregistered")
    assert finding["source"] is None and finding["target"]["dtype"] == "float32"


def test_keras_tf_variable_attribute() -> None:
    pytest.importorskip("tensorflow", reason="tensorflow is not installed")
    keras = pytest.importorskip("keras", reason="keras is not installed")
    import numpy as np
    import tensorflow as tf

    class Wrong(keras.Model):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.dense = keras.layers.Dense(3)
            self.gamma = tf.Variable(tf.ones([3]), name="gamma")
            self.extra = [tf.Variable(1.0)]

        def call(self, x: Any) -> Any:
            return self.dense(x) * self.gamma

    class Right(keras.Model):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.dense = keras.layers.Dense(3)
            self.gamma = self.add_weight(shape=(3,), initializer="ones", name="gamma")

        def call(self, x: Any) -> Any:
            return self.dense(x) * self.gamma

    wrong, right = Wrong(), Right()
    wrong(np.ones((1, 4), "float32"))
    right(np.ones((1, 4), "float32"))
    report = ckptdiff.diff(ckptdiff.resolve(right), wrong)
    found = {f.key: f for f in report.findings if f.kind == "unregistered"}
    assert set(found) == {"gamma", "extra/0"}
    assert "tf.train.Checkpoint(model=...) does save it" in str(found["gamma"].note)
    assert "does not save it either" in str(found["extra/0"].note)
    assert "self.add_weight" in str(found["gamma"].note)
    # The oracle: Keras really does not track it.
    assert all(v is not wrong.gamma for v in wrong.weights)
    assert "unregistered" not in ckptdiff.resolve(right).metadata
