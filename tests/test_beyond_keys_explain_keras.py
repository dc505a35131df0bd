"""``diff --explain`` for Keras, checked against what ``model.load_weights`` really does."""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Any

import pytest

import ckptdiff
from ckptdiff.diffing.report import LoadStatement
from ckptdiff.loaders.explain import explain_load

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
keras = pytest.importorskip("keras", reason="keras is not installed")


def build(units: tuple[int, ...] = (3, 3), dtype: str = "float32",
          names: tuple[str, ...] | None = None) -> Any:
    names = names or tuple(f"d{i}" for i in range(len(units)))
    layers = [keras.layers.Dense(u, name=n, dtype=dtype) for u, n in zip(units, names,
                                                                          strict=True)]
    return keras.Sequential([keras.Input((4,)), *layers], name="seq")


TARGETS: dict[str, dict[str, Any]] = {
    "same": {}, "layer_removed": {"units": (3,)}, "layer_added": {"units": (3, 3, 3)},
    "shape": {"units": (5, 3)}, "renamed": {"names": ("a", "b")}, "float64": {"dtype": "float64"},
}
FILES = ("model.weights.h5", "model.keras", "legacy.h5")


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("keras_files")
    model = build()
    model.save_weights(folder / "model.weights.h5")
    model.save(folder / "model.keras")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Keras warns that .h5 is a legacy format
        model.save(folder / "legacy.h5")
    return folder


def statements(path: Path, target: Any) -> list[LoadStatement]:
    return list(explain_load(ckptdiff.resolve(path), ckptdiff.resolve(target)))


def real_load(model: Any, path: Path, **kwargs: Any) -> Exception | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            model.load_weights(path, **kwargs)
        except ValueError as error:
            return error
    return None


def objects_failed(text: str) -> int | None:
    found = re.search(r"A total of (\d+) objects could not be loaded", text)
    return None if found is None else int(found.group(1))


@pytest.mark.parametrize("file", FILES)
@pytest.mark.parametrize("case", list(TARGETS))
def test_load_weights_statement_matches_keras(saved: Path, file: str, case: str) -> None:
    path = saved / file
    said = statements(path, build(**TARGETS[case]))
    (plain,) = [s for s in said if s.call == f"model.load_weights({str(path)!r})"
                and s.outcome != "casts"]
    error = real_load(build(**TARGETS[case]), path)
    if error is None:
        assert plain.outcome in ("loads", "partial"), plain
    else:
        assert plain.outcome == "raises", plain
        text = str(error).splitlines()[0]
        if file == "legacy.h5":
            assert plain.message.removeprefix("ValueError: ").startswith(text), (plain, text)
        else:
            assert objects_failed(plain.message) == objects_failed(text)
    skipping = [s for s in said if "skip_mismatch=True" in s.call]
    if skipping:
        (skip,) = skipping
        skip_error = real_load(build(**TARGETS[case]), path, skip_mismatch=True)
        assert (skip.outcome == "raises") == (skip_error is not None), (skip, skip_error)


def test_v3_files_pair_by_path_not_by_name(saved: Path) -> None:
    said = statements(saved / "model.weights.h5", build(names=("a", "b")))
    assert said[0].outcome == "loads"
    assert "4 variable(s) load although their names differ" in said[0].message
    legacy = statements(saved / "legacy.h5", build(names=("a", "b")))
    assert legacy[0].outcome == "loads" and "d0 → a, d1 → b" in legacy[0].message


def test_dtype_cast_statement(saved: Path) -> None:
    model = build(dtype="float64")
    (cast,) = [s for s in statements(saved / "model.weights.h5", model) if s.outcome == "casts"]
    assert "float32 → float64" in cast.message and len(cast.keys) == 4
    model.load_weights(saved / "model.weights.h5")
    assert {str(w.dtype) for w in model.weights} == {"float64"}


def test_tf_checkpoint_is_not_a_load_weights_file(tmp_path: Path) -> None:
    tf = pytest.importorskip("tensorflow", reason="tensorflow is not installed")
    model = build()
    prefix = tf.train.Checkpoint(model=model).write(str(tmp_path / "ckpt"))
    (load, restore) = statements(Path(prefix), build())
    assert load.outcome == "raises" and restore.outcome == "not_applicable"
    with pytest.raises(ValueError, match="File format not supported"):
        build().load_weights(prefix)
