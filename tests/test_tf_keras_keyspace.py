"""A live Keras model against a TF2 checkpoint or SavedModel, in the key space restore uses.

``tf.train.Checkpoint(...).restore`` pairs objects by their path in the object graph, so the
model is keyed by those paths (rooted where the checkpoint holds it) and the verdict must agree
with what TensorFlow really restores: every case runs the real restore and compares values.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import ckptdiff

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
tf = pytest.importorskip("tensorflow", reason="TensorFlow writes and restores the checkpoints")
keras = pytest.importorskip("keras", reason="the targets are Keras models")
np = pytest.importorskip("numpy")


def sequential() -> Any:
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, name="enc"),
                             keras.layers.BatchNormalization(name="bn"),
                             keras.layers.Dense(3, name="head")])


def without_bn() -> Any:
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, name="enc"),
                             keras.layers.Dense(3, name="head")])


def functional() -> Any:
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(6, name="enc")(inputs)
    return keras.Model(inputs, keras.layers.Dense(2, name="head")(hidden))


class Tower(keras.Model):
    """A subclassed model: its layers are attributes (``blocks`` a Python list of them)."""

    def __init__(self, blocks: int = 0) -> None:
        super().__init__()
        self.encoder = keras.layers.Dense(5)
        self.blocks = [keras.layers.Dense(5) for _ in range(blocks)]
        self.head = keras.layers.Dense(2)

    def call(self, x: Any) -> Any:
        x = self.encoder(x)
        for block in self.blocks:
            x = block(x)
        return self.head(x)


def subclassed() -> Any:
    model = Tower()
    model(np.zeros((1, 4), "float32"))
    return model


def subclassed_with_a_list() -> Any:
    model = Tower(blocks=2)
    model(np.zeros((1, 4), "float32"))
    return model


def trained(build: Callable[[], Any]) -> tuple[Any, Any]:
    """A model after one Adam step, and its optimizer."""
    model = build()
    optimizer = keras.optimizers.Adam()
    model.compile(optimizer=optimizer, loss="mse")
    outputs = model.output_shape[-1] if hasattr(model, "output_shape") else 2
    model.fit(np.random.rand(8, 4), np.random.rand(8, outputs), verbose=0, epochs=1)
    return model, optimizer


def tf_checkpoint(tmp_path: Path, build: Callable[[], Any], root: str = "model") -> tuple[
        str, list[Any]]:
    model, optimizer = trained(build)
    prefix = tf.train.Checkpoint(**{root: model}, optimizer=optimizer).save(str(tmp_path / "ck"))
    return prefix, [v.numpy() for v in model.weights]


def values_restored(path: str, saved: list[Any], root: str, build: Callable[[], Any]) -> bool:
    """Real restore into a fresh model held at ``root`` (``root`` itself for "root"): True when
    every variable holds the saved value."""
    model = build()
    tf.train.Checkpoint(**{root: model}).restore(path).expect_partial()
    return len(saved) == len(model.weights) and all(
        np.array_equal(value, v.numpy()) for value, v in zip(saved, model.weights, strict=True))


@pytest.mark.parametrize("build", [sequential, functional, subclassed])
def test_a_tf2_checkpoint_loads_into_the_model_that_wrote_it(tmp_path: Path,
                                                               build: Callable[[], Any]) -> None:
    prefix, saved = tf_checkpoint(tmp_path, build)
    report = ckptdiff.diff(prefix, build)
    assert report.compatible, report.to_text()
    assert report.matched == len(saved)
    assert values_restored(prefix, saved, "model", build)


def test_layers_in_a_python_list_are_not_restored_and_ckptdiff_says_so(tmp_path: Path) -> None:
    # Keras 3 lists no Python list of layers among a model's checkpoint dependencies: the
    # blocks' variables are reachable only through the optimizer, and restoring the model alone
    # leaves them at their initial values.
    prefix, saved = tf_checkpoint(tmp_path, subclassed_with_a_list)
    report = ckptdiff.diff(prefix, subclassed_with_a_list)
    assert not report.compatible
    assert len([f for f in report.findings if f.kind == "missing"]) == 4
    assert not values_restored(prefix, saved, "model", subclassed_with_a_list)


def test_the_model_is_found_under_another_root_name(tmp_path: Path) -> None:
    prefix, saved = tf_checkpoint(tmp_path, sequential, root="net")
    target = ckptdiff.resolve(sequential, against=ckptdiff.read(prefix))
    assert target.metadata["object_graph_root"] == "net"
    assert all(t.key.startswith("net/") for t in target.tensors)
    assert target.metadata["user_keys"]["net/_functional/_operations/1/_kernel"] == "enc/kernel"
    assert ckptdiff.diff(prefix, sequential).compatible
    assert values_restored(prefix, saved, "net", sequential)


def test_a_removed_layer_fails_and_orphans_its_adam_slots(tmp_path: Path) -> None:
    prefix, _ = tf_checkpoint(tmp_path, sequential)
    report = ckptdiff.diff(prefix, without_bn)
    assert not report.compatible
    missing = {f.key for f in report.findings if f.kind == "missing"}
    # The head moved from position 3 to 2: restore pairs position 2 with the stored BatchNorm.
    assert missing == {"model/_functional/_operations/2/_kernel",
                       "model/_functional/_operations/2/bias"}
    # Beside the loader's keys, the names the user gave the layers.
    assert "named head/{kernel,bias}" in report.to_text()
    orphaned = {f.key for f in report.findings if f.kind == "optimizer" and
                f.severity == "warning"}
    assert "optimizer/model/_functional/_operations/2/gamma/momentum" in orphaned
    assert "optimizer/model/_functional/_operations/3/_kernel/velocity" in orphaned
    # TensorFlow agrees: the head keeps its initial values.
    fresh = without_bn()
    head = fresh.get_layer("head").kernel.numpy().copy()
    status = tf.train.Checkpoint(model=fresh).restore(prefix)
    with pytest.raises(AssertionError):
        status.assert_existing_objects_matched()
    assert np.array_equal(head, fresh.get_layer("head").kernel.numpy())


def test_a_savedmodel_loads_into_the_model_that_wrote_it(tmp_path: Path) -> None:
    model = sequential()
    for variable in model.weights:
        variable.assign(np.random.rand(*variable.shape))
    tf.saved_model.save(model, str(tmp_path / "sm"))
    report = ckptdiff.diff(tmp_path / "sm", sequential)
    assert report.compatible, report.to_text()
    assert report.matched == 8
    saved = [v.numpy() for v in model.weights]
    assert values_restored(str(tmp_path / "sm" / "variables" / "variables"), saved, "root",
                           sequential)


def test_the_dry_run_replays_restore_in_that_key_space(tmp_path: Path) -> None:
    from ckptdiff.loaders.explain import explain_load

    prefix, _ = tf_checkpoint(tmp_path, sequential)
    source = ckptdiff.read(prefix)
    target = ckptdiff.resolve(sequential, against=source)
    statements = {s.call: s for s in explain_load(source, target)}
    existing = next(s for call, s in statements.items()
                    if call.endswith(".assert_existing_objects_matched()"))
    assert existing.outcome == "loads"
    assert existing.call.startswith("tf.train.Checkpoint(model=model)")
