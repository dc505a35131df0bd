"""A Keras file diffed against the live model that wrote it is compatible; edits show up.

For every format, the live-model manifest (``ckptdiff.targets.keras.model``) and the file's manifest
hold the same keys, shapes and dtypes; ``ckptdiff.diff(path, model)`` agrees. A renamed layer
loads (``load_weights`` pairs by saving path or layer order; by name it is skipped), widening a
Dense gives shape findings, keyed as the loader pairs them with the user's names beside.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.test_keras_oracle import FORMATS, keras_models, save_all

import ckptdiff
import ckptdiff.readers as registry
from ckptdiff.errors import UsageError
from ckptdiff.manifest import Manifest


def triples(manifest: Manifest) -> set[tuple[str, tuple[int, ...], str]]:
    return {(t.key, t.shape, t.dtype) for t in manifest if t.kind in ("parameter", "buffer")}


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Any, dict[str, Path]]]:
    models = keras_models()
    out = {}
    for name in ("functional_model", "sequential_model", "custom_model", "subclassed_model"):
        model = getattr(models, name)()
        out[name] = (model, save_all(model, tmp_path_factory.mktemp(name)))
    return out


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("model_name", ["functional_model", "sequential_model", "custom_model",
                                        "subclassed_model"])
def test_file_and_model_agree(written: dict[str, Any], model_name: str, fmt: str) -> None:
    from ckptdiff.targets.keras.model import keras_model_manifest

    model, paths = written[model_name]
    target = keras_model_manifest(model, model_name)
    assert target.format == "keras-model"
    assert triples(registry.read(paths[fmt])) == triples(target)
    report = ckptdiff.diff(paths[fmt], model)
    assert report.compatible, [f.to_dict() for f in report.findings]
    assert [f for f in report.findings if f.severity != "info"] == []


def test_custom_layer_keys_are_positional_with_the_real_name(written: dict[str, Any]) -> None:
    from ckptdiff.targets.keras.model import keras_model_manifest

    model, paths = written["custom_model"]
    target = keras_model_manifest(model, "custom")
    assert target["scale/vars/0"].variable_name == "scale/w"
    assert target["scale/vars/1"].dtype == "int32"
    assert target["scale/vars/1"].trainable is False
    assert target["pre/kernel"].trainable is False
    legacy = registry.read(paths["legacy_h5"])
    assert legacy["scale/vars/0"].variable_name == "scale/w"
    assert registry.read(paths["keras"])["pre/kernel"].trainable is False


@pytest.mark.parametrize("model_name", ["functional_model", "sequential_model"])
def test_target_without_keras_saving_internals(written: dict[str, Any], model_name: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Without Keras' private saving walk, keys come from variable paths: same for built-ins."""
    from ckptdiff.targets.keras import model as keras_target

    model, paths = written[model_name]
    monkeypatch.setattr(keras_target, "record_saved_state", lambda model: None)
    target = keras_target.keras_model_manifest(model, model_name)
    assert triples(target) == triples(registry.read(paths["keras"]))


def test_target_metadata(written: dict[str, Any]) -> None:
    from ckptdiff.targets.keras.model import keras_model_manifest

    model, _ = written["functional_model"]
    metadata = keras_model_manifest(model, "m").metadata
    assert metadata["live_model"] is True
    assert metadata["layers_with_weights"] == [layer.name for layer in model.layers
                                              if layer.weights]
    assert metadata["unbuilt_layers"] == [] and metadata["bytes_read"] == 0
    assert all(t.device is None for t in keras_model_manifest(model, "m"))


def user_name(finding: Any) -> str:
    """The target's name for a finding's key (the key itself where the side knows no other)."""
    return (finding.names[1] if finding.names and finding.names[1] else finding.key)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_renamed_layer_loads(written: dict[str, Any], fmt: str) -> None:
    # load_weights pairs Keras 3 files by saving path (class and position) and legacy .h5 by
    # layer order: the user's layer name plays no part.
    _, paths = written["functional_model"]
    renamed = keras_models().functional_model(head_name="classifier")
    report = ckptdiff.diff(paths[fmt], renamed)
    assert report.compatible, report.to_text()
    assert [f for f in report.findings if f.severity == "error"] == []


@pytest.mark.parametrize("fmt", ["legacy_h5", "legacy_weights_h5", "tf2_weights_h5"])
def test_a_renamed_layer_is_skipped_by_name(written: dict[str, Any], fmt: str) -> None:
    _, paths = written["functional_model"]
    renamed = keras_models().functional_model(head_name="classifier")
    report = ckptdiff.diff(paths[fmt], renamed, loader="keras.load_weights-by_name")
    assert not report.compatible
    errors = {(f.kind, f.key, user_name(f)) for f in report.findings if f.severity == "error"}
    assert errors == {("missing", "classifier/weight#0", "classifier/kernel"),
                      ("missing", "classifier/weight#1", "classifier/bias")}
    ignored = {f.key for f in report.findings if f.severity == "info"}
    assert {"my_dense/weight#0", "my_dense/weight#1"} <= ignored


@pytest.mark.parametrize("fmt", FORMATS)
def test_widened_dense_is_a_shape_difference(written: dict[str, Any], fmt: str) -> None:
    _, paths = written["functional_model"]
    wider = keras_models().functional_model(head_units=5)
    report = ckptdiff.diff(paths[fmt], wider)
    shapes = {user_name(f): (f.source.shape if f.source else None,
                             f.target.shape if f.target else None)
              for f in report.findings if f.kind == "shape"}
    # The next Dense (default name "dense") reads the wider output too.
    assert shapes == {"my_dense/kernel": ((4, 3), (4, 5)), "my_dense/bias": ((3,), (5,)),
                      "dense/kernel": ((3, 2), (5, 2))}
    assert {f.kind for f in report.findings if f.severity == "error"} == {"shape"}
    assert not report.compatible


def test_optimizer_state_is_not_an_error(tmp_path: Path) -> None:
    import numpy as np

    model = keras_models().sequential_model()
    model.compile("adam", "mse")
    model.fit(np.zeros((2, 6, 6, 2)), np.zeros((2, 4)), verbose=0)
    model.save(tmp_path / "trained.keras")
    manifest = registry.read(tmp_path / "trained.keras")
    assert manifest["optimizer/vars/0"].kind == "other"  # the iteration counter
    assert any(t.kind == "optimizer_slot" for t in manifest)
    report = ckptdiff.diff(tmp_path / "trained.keras", model)
    assert report.compatible
    assert {f.kind for f in report.findings} == {"optimizer"}


def test_build_keras_model_from_factories() -> None:
    from ckptdiff.targets.keras.model import build_keras_model, is_keras_model

    models = keras_models()
    model = build_keras_model(models.tiny_model, {"head_units": 4})
    assert is_keras_model(model) and not is_keras_model(type(model))
    assert model.get_layer("head").units == 4
    with pytest.raises(UsageError, match="failed: TypeError"):
        build_keras_model(models.tiny_model, {"nope": 1})
    with pytest.raises(UsageError, match="not a Keras model"):
        build_keras_model(dict, {})


def test_unbuilt_model_says_how_to_fix() -> None:
    import keras

    from ckptdiff.targets.keras.model import build_keras_model, keras_model_manifest

    def unbuilt() -> Any:
        return keras.Sequential([keras.layers.Dense(3)], name="lazy")

    with pytest.raises(UsageError, match=r"keras.Input\(shape=...\).*model.build"):
        build_keras_model(unbuilt, {})
    with pytest.raises(UsageError, match="is not built"):
        keras_model_manifest(unbuilt(), "lazy")
    ran_once = unbuilt()
    ran_once(keras.ops.zeros((1, 2)))
    ran_once.built = False  # a model whose build config is known is rebuilt from it
    assert len(keras_model_manifest(ran_once, "lazy")) == 2


def test_model_class_target(tmp_path: Path) -> None:
    import keras

    class Classifier(keras.Model):
        def __init__(self, units: int = 2) -> None:
            inputs = keras.Input((3,))
            super().__init__(inputs, keras.layers.Dense(units, name="fc")(inputs))

    model = Classifier(units=2)
    model.save_weights(tmp_path / "c.weights.h5")
    same = ckptdiff.diff(tmp_path / "c.weights.h5", Classifier, model_kwargs={"units": 2})
    assert same.compatible
    report = ckptdiff.diff(tmp_path / "c.weights.h5", Classifier, model_kwargs={"units": 3})
    assert {user_name(f) for f in report.findings if f.kind == "shape"} == {"fc/kernel", "fc/bias"}
    assert {f.key for f in report.findings if f.kind == "shape"} == {"layers/dense/vars/0",
                                                                     "layers/dense/vars/1"}
