"""``optimizer`` findings: orphaned slots, bookkeeping, torch parameter-group counts."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from tests.helpers import manifest, t

import ckptdiff
from ckptdiff.diffing.match import diff_manifests


def test_orphaned_slot_is_a_warning_and_its_variable_the_error() -> None:
    source = manifest(t("dense/kernel", 2), t("gone/kernel", 3),
                      t("optimizer/dense/kernel/m", 2, kind="optimizer_slot",
                        slot_of="dense/kernel"),
                      t("optimizer/gone/kernel/m", 3, kind="optimizer_slot",
                        slot_of="gone/kernel"), fmt="tf-checkpoint")
    for live in (True, False):
        target = manifest(t("dense/kernel", 2),
                          t("optimizer/dense/kernel/m", 2, kind="optimizer_slot",
                            slot_of="dense/kernel"), live=live, fmt="tf-checkpoint")
        findings = {f.key: (f.kind, f.severity) for f in diff_manifests(source, target).findings}
        assert findings == {"gone/kernel": ("unexpected", "error"),
                            "optimizer/gone/kernel/m": ("optimizer", "warning")}


def test_bookkeeping_against_a_live_model_is_explained_info() -> None:
    source = manifest(t("w", 2), t("save_counter", dtype="int64", kind="other"),
                      t("optimizer/iter", dtype="int64", kind="other"),
                      t("optimizer/learning_rate", kind="other"))
    report = diff_manifests(source, manifest(t("w", 2), live=True))
    notes = {f.key: (f.kind, f.severity, f.note) for f in report.findings}
    assert {v[:2] for v in notes.values()} == {("optimizer", "info")}
    assert "save counter" in str(notes["save_counter"][2])
    assert "(root).optimizer.iter" in str(notes["optimizer/iter"][2])
    assert "hyperparameter" in str(notes["optimizer/learning_rate"][2])
    assert report.compatible


# --- TF2: a checkpoint saved with Adam after apply_gradients, restored into a smaller model ---

def _tf() -> tuple[Any, Any]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    tf = pytest.importorskip("tensorflow", reason="tensorflow is not installed")
    keras = pytest.importorskip("keras", reason="keras is not installed")
    return tf, keras


def build(keras: Any, layers: int) -> Any:
    """Sequential of ``layers`` Dense layers named d0, d1, …"""
    return keras.Sequential([keras.Input((4,))] + [keras.layers.Dense(3, name=f"d{i}")
                                                   for i in range(layers)], name="seq")


def built_checkpoint(tf: Any, keras: Any, layers: int, path: Path) -> tuple[Any, str]:
    """The Checkpoint a training script of the new model restores into (optimizer built)."""
    model = build(keras, layers)
    optimizer = keras.optimizers.Adam()
    optimizer.build(model.trainable_variables)
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer)
    return checkpoint, checkpoint.write(str(path / "ckpt"))


@pytest.fixture(scope="module")
def trained_tf(tmp_path_factory: pytest.TempPathFactory) -> str:
    """tf.train.Checkpoint of a two-layer model and its Adam after one apply_gradients."""
    tf, keras = _tf()
    model = build(keras, 2)
    optimizer = keras.optimizers.Adam()
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(model(tf.ones((2, 4))))
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
    prefix = tmp_path_factory.mktemp("trained_tf") / "ckpt"
    return str(tf.train.Checkpoint(model=model, optimizer=optimizer).save(str(prefix)))


def test_tf2_slots_of_a_removed_layer_are_orphaned(trained_tf: str, tmp_path: Path) -> None:
    tf, keras = _tf()
    checkpoint, target = built_checkpoint(tf, keras, 1, tmp_path)
    report = ckptdiff.diff(trained_tf, target)
    orphaned = sorted(f.key for f in report.findings if f.kind == "optimizer"
                      and f.severity == "warning")
    assert orphaned == [f"optimizer/model/_functional/_operations/2/{v}/{s}"
                        for v in ("_kernel", "bias") for s in ("momentum", "velocity")]
    unexpected = sorted(f.key for f in report.findings if f.kind == "unexpected")
    assert unexpected == ["model/_functional/_operations/2/_kernel",
                          "model/_functional/_operations/2/bias"]
    # save_counter: the restoring Checkpoint has its own; never an error.
    assert {f.severity for f in report.findings if f.key == "save_counter"} <= {"info"}
    # The oracle: restoring with the optimizer really fails on the optimizer's objects.
    with pytest.raises(AssertionError, match=r"Unresolved object in checkpoint \(root\)\."
                                             r"optimizer\."):
        checkpoint.restore(trained_tf).assert_consumed()


def test_tf2_same_model_has_no_optimizer_findings(trained_tf: str, tmp_path: Path) -> None:
    tf, keras = _tf()
    checkpoint, target = built_checkpoint(tf, keras, 2, tmp_path)
    report = ckptdiff.diff(trained_tf, target)
    assert report.compatible
    assert not [f for f in report.findings if f.severity != "info"]
    checkpoint.restore(trained_tf).assert_consumed()  # and TF agrees


def test_tf2_against_a_live_keras_model_pairs_slots_by_variable_name(trained_tf: str) -> None:
    _, keras = _tf()
    report = ckptdiff.diff(trained_tf, build(keras, 1))
    orphaned = {f.key for f in report.findings if f.kind == "optimizer"
                and f.severity == "warning"}
    assert orphaned == {f"optimizer/model/_functional/_operations/2/{v}/{s}"
                        for v in ("_kernel", "bias") for s in ("momentum", "velocity")}


def test_json_validates(trained_tf: str, tmp_path: Path, report_schema: dict[str, Any]) -> None:
    tf, keras = _tf()
    _, target = built_checkpoint(tf, keras, 1, tmp_path)
    document = json.loads(ckptdiff.diff(trained_tf, target).to_json())
    jsonschema.validate(document, report_schema)
    assert document["summary"]["optimizer"] == 5  # 4 orphaned slots + save_counter


# --- torch: optimizer state whose parameter count does not fit the target ---

def test_torch_optimizer_group_count_against_trainable_parameters(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch", reason="torch is not installed")
    nn = torch.nn

    def net(head: int = 2) -> Any:
        return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, head))

    model = net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(2, 4)).sum().backward()
    optimizer.step()
    path = tmp_path / "ckpt.pt"
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, path)

    frozen = net()
    frozen[0].requires_grad_(False)
    (finding,) = [f for f in ckptdiff.diff(path, frozen).findings
                  if f.kind == "optimizer" and f.severity == "warning"]
    assert finding.key == "optimizer" and finding.source is None and finding.target is None
    assert "holds 4 parameters in 1 group" in str(finding.note)
    assert "the target has 2 trainable parameters" in str(finding.note)
    assert "model.parameters() (all 4) accepts it" in str(finding.note)
    # The oracle: an optimizer over the trainable parameters rejects the state.
    trainable = torch.optim.SGD([p for p in frozen.parameters() if p.requires_grad], lr=0.1)
    with pytest.raises(ValueError, match="doesn't match the size of optimizer's group"):
        trainable.load_state_dict(torch.load(path)["optimizer"])
    torch.optim.SGD(frozen.parameters(), lr=0.1).load_state_dict(torch.load(path)["optimizer"])
    # The model written the right way: no warning.
    assert not [f for f in ckptdiff.diff(path, net()).findings if f.severity == "warning"]
