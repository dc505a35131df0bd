"""``diff --explain`` for TensorFlow, checked against ``tf.train.Checkpoint.restore`` itself."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import ckptdiff
from ckptdiff.diffing.report import LoadStatement
from ckptdiff.loaders.explain import explain_load

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
tf = pytest.importorskip("tensorflow", reason="tensorflow is not installed")
keras = pytest.importorskip("keras", reason="keras is not installed")

METHODS = ("", ".assert_consumed()", ".assert_existing_objects_matched()", ".expect_partial()")


def build(units: tuple[int, ...] = (3, 3), dtype: str = "float32") -> Any:
    layers = [keras.layers.Dense(u, name=f"d{i}", dtype=dtype) for i, u in enumerate(units)]
    return keras.Sequential([keras.Input((4,)), *layers], name="seq")


def with_optimizer(**kwargs: Any) -> Callable[[], Any]:
    def make() -> Any:
        model = build(**kwargs)
        optimizer = keras.optimizers.Adam()
        optimizer.build(model.trainable_variables)
        return tf.train.Checkpoint(model=model, optimizer=optimizer)
    return make


# The Checkpoint a training script of the new code restores into.
TARGETS: dict[str, Callable[[], Any]] = {
    "same": with_optimizer(),
    "layer_removed": with_optimizer(units=(3,)),
    "layer_added": with_optimizer(units=(3, 3, 3)),
    "shape": with_optimizer(units=(5, 3)),
    "float64": with_optimizer(dtype="float64"),
    "model_only": lambda: tf.train.Checkpoint(model=build()),
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Saved with an Adam optimizer after one apply_gradients."""
    model = build()
    optimizer = keras.optimizers.Adam()
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(model(tf.ones((2, 4))))
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
    prefix = tmp_path_factory.mktemp("tf_trained") / "ckpt"
    return str(tf.train.Checkpoint(model=model, optimizer=optimizer).save(str(prefix)))


def explain(trained: str, case: str, folder: Path) -> list[LoadStatement]:
    target = TARGETS[case]().write(str(folder / "target"))
    return list(explain_load(ckptdiff.resolve(trained), ckptdiff.resolve(target)))


def real(trained: str, case: str, method: str) -> Exception | None:
    checkpoint = TARGETS[case]()
    tf.get_logger().setLevel("ERROR")
    try:
        status = checkpoint.restore(trained)
        if method:
            getattr(status, method.strip(".()"))()
    except (AssertionError, ValueError, tf.errors.InvalidArgumentError) as error:
        return error
    return None


@pytest.mark.parametrize("case", list(TARGETS))
def test_restore_statements_match_tensorflow(trained: str, case: str, tmp_path: Path) -> None:
    said = {next((m for m in METHODS if m and s.call.endswith(m)), ""): s
            for s in explain(trained, case, tmp_path)}
    for method in METHODS:
        statement = said[method]
        error = real(trained, case, method)
        if error is None:
            assert statement.outcome in ("loads", "partial"), (method, statement)
            continue
        assert statement.outcome == "raises", (method, statement, error)
        text = str(error)
        unresolved = re.match(r"Unresolved object in checkpoint (\S+?):", text)
        unbound = re.match(r"Found (\d+) Python objects that were not bound", text)
        if unresolved:
            assert unresolved.group(1) in statement.keys, (statement, text)
        elif unbound:
            assert int(unbound.group(1)) == len(statement.keys), (statement, text)
        else:
            kind = "ValueError" if isinstance(error, ValueError) else "InvalidArgumentError"
            assert statement.message.startswith(kind), (statement, text)


def test_removed_layer_names_the_orphaned_optimizer_slots(trained: str, tmp_path: Path) -> None:
    said = explain(trained, "layer_removed", tmp_path)
    (consumed,) = [s for s in said if s.call.endswith(".assert_consumed()")]
    assert set(consumed.keys) == {"(root).optimizer._variables.6", "(root).optimizer._variables.7",
                                  "(root).optimizer._variables.8", "(root).optimizer._variables.9",
                                  "(root).optimizer._trainable_variables.2",
                                  "(root).optimizer._trainable_variables.3"}
    (partial,) = [s for s in said if s.call.endswith(".expect_partial()")]
    assert partial.outcome == "partial" and "6 unused value(s)" in partial.message


def test_dtype_differences_raise_in_tensorflow(trained: str, tmp_path: Path) -> None:
    restore = explain(trained, "float64", tmp_path)[0]
    assert restore.outcome == "raises" and "does not cast" in restore.message
