"""``trainable`` findings: trained at save time, frozen in the target (and the reverse)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from tests.helpers import manifest, t

import ckptdiff
from ckptdiff.diffing.match import diff_manifests

torch = pytest.importorskip("torch", reason="torch is not installed")
nn = torch.nn


class Net(nn.Module):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(),
                                     nn.Linear(8, 8))
        self.head = nn.Linear(8, 2)

    def forward(self, x: Any) -> Any:
        return self.head(self.encoder(x))


def frozen_encoder() -> Net:
    """The fine-tuning model written the wrong way: the encoder is frozen."""
    model = Net()
    for parameter in model.encoder.parameters():
        parameter.requires_grad = False
    return model


@pytest.fixture(scope="module")
def trained_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint of Net trained one Adam step: model and optimizer state."""
    torch.manual_seed(0)
    model = Net()
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.randn(4, 4)).sum().backward()
    optimizer.step()
    path = tmp_path_factory.mktemp("trained") / "ckpt.pth"
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, path)
    return path


def test_frozen_encoder_is_reported_per_key_with_a_module_note(trained_checkpoint: Path) -> None:
    report = ckptdiff.diff(trained_checkpoint, frozen_encoder())
    found = [f for f in report.findings if f.kind == "trainable"]
    expected = [n for n, p in frozen_encoder().named_parameters() if not p.requires_grad]
    assert sorted(f.key for f in found) == sorted(expected)
    assert {f.severity for f in found} == {"warning"}
    notes = {f.note for f in found}
    assert len(notes) == 1  # one module summary: the rows fold into one
    (note,) = notes
    assert note is not None and note.startswith("encoder.* frozen in the target: 6 tensors")
    assert "exp_avg" in note
    assert report.compatible  # weights still load


def test_frozen_encoder_folds_into_one_row(trained_checkpoint: Path) -> None:
    from ckptdiff.render.rows import finding_rows

    rows = [r for r in finding_rows(ckptdiff.diff(trained_checkpoint, frozen_encoder()).findings)
            if r.kind == "trainable"]
    assert len(rows) == 1 and rows[0].count == 6


def test_model_written_the_right_way_has_no_trainable_findings(trained_checkpoint: Path) -> None:
    report = ckptdiff.diff(trained_checkpoint, Net())
    assert not [f for f in report.findings if f.kind == "trainable"]


def test_the_frozen_parameters_really_get_no_gradient(trained_checkpoint: Path) -> None:
    # The oracle: what the finding claims, torch does.
    model = frozen_encoder()
    model.load_state_dict(torch.load(trained_checkpoint)["model"])
    model(torch.randn(4, 4)).sum().backward()
    frozen = {n for n, p in model.named_parameters() if p.grad is None}
    report = ckptdiff.diff(trained_checkpoint, model)
    assert frozen == {f.key for f in report.findings if f.kind == "trainable"}


def test_pickled_frozen_parameter_unfrozen_in_target(tmp_path: Path) -> None:
    # Whole nn.Parameter objects record requires_grad: the reverse direction.
    model = Net()
    model.head.weight.requires_grad_(False)
    path = tmp_path / "params.pt"
    torch.save(dict(model.named_parameters()), path)
    report = ckptdiff.diff(path, Net())
    (finding,) = [f for f in report.findings if f.kind == "trainable"]
    assert finding.key == "head.weight"
    assert finding.note is not None and finding.note.startswith(
        "trainable in the target but frozen at save time (the checkpoint records trainable=False)")


def test_json_validates(trained_checkpoint: Path, report_schema: dict[str, Any]) -> None:
    document = json.loads(ckptdiff.diff(trained_checkpoint, frozen_encoder()).to_json())
    jsonschema.validate(document, report_schema)
    assert document["summary"]["trainable"] == 6


def test_module_note_picks_the_shortest_uniform_prefix() -> None:
    source = manifest(*(t(k, 2, trainable=True) for k in
                        ("enc.a.w", "enc.a.b", "enc.b.w", "dec.w", "dec.b")))
    target = manifest(t("enc.a.w", 2, trainable=False), t("enc.a.b", 2, trainable=False),
                      t("enc.b.w", 2, trainable=True), t("dec.w", 2, trainable=False),
                      t("dec.b", 2, trainable=False), live=True)
    notes = {f.key: f.note for f in diff_manifests(source, target).findings}
    assert notes["enc.a.w"] == notes["enc.a.b"]
    assert str(notes["enc.a.w"]).startswith("enc.a.* frozen in the target: 2 tensors")
    assert str(notes["dec.w"]).startswith("dec.* frozen in the target: 2 tensors")
    assert "enc.b.w" not in notes


def test_unknown_trainability_is_not_judged() -> None:
    source = manifest(t("w", 2), t("v", 2, trainable=True))
    target = manifest(t("w", 2, trainable=False), t("v", 2), live=True)
    assert diff_manifests(source, target).findings == ()


def test_keras_frozen_layer_against_a_keras_file(tmp_path: Path) -> None:
    keras_module = pytest.importorskip("keras", reason="keras is not installed")

    def build(freeze: bool) -> Any:
        model = keras_module.Sequential([keras_module.Input((4,)),
                                         keras_module.layers.Dense(3, name="enc"),
                                         keras_module.layers.Dense(2, name="head")])
        model.get_layer("enc").trainable = not freeze
        return model

    path = tmp_path / "model.keras"
    build(False).save(path)
    report = ckptdiff.diff(path, build(True))
    # Keys are load_weights' saving paths; the names the user gave stand beside them.
    trainable = [f for f in report.findings if f.kind == "trainable"]
    assert sorted(f.key for f in trainable) == ["layers/dense/vars/0", "layers/dense/vars/1"]
    assert sorted(f.names[1] for f in trainable if f.names) == ["enc/bias", "enc/kernel"]
    assert not [f for f in ckptdiff.diff(path, build(False)).findings if f.kind == "trainable"]
