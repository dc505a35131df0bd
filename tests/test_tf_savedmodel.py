"""SavedModel directories against TensorFlow as the oracle, and the reader's refusals."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from tests.test_tf_oracle import assert_matches_listing, generated_cases, raw_key

import ckptdiff.readers as registry
from ckptdiff.errors import CkptdiffError, UsageError

FIXTURE = Path(__file__).resolve().parent.parent / "testdata/readers/tf/savedmodel_module"


@pytest.fixture(scope="module")
def saved(request: pytest.FixtureRequest) -> tuple[Path, dict[str, Any]]:
    """The generated SavedModels and TensorFlow's account of them."""
    cases = generated_cases(request.config)
    return cases, json.loads((cases / "oracle.json").read_text())["savedmodels"]


@pytest.mark.parametrize("name", ["sm_module", "sm_keras_export", "sm_keras_save"])
def test_savedmodel_matches_tensorflow(name: str, saved: tuple[Path, dict[str, Any]],
                                       manifest_schema: dict[str, Any]) -> None:
    import jsonschema

    cases, oracle = saved
    case = oracle[name]
    manifest = registry.read(cases / case["path"])
    assert manifest.format == "tf-savedmodel"
    jsonschema.validate(json.loads(manifest.to_json()), manifest_schema)
    assert_matches_listing(manifest, case["variables"], tf2=True)
    assert {raw_key(t): t.trainable for t in manifest} == case["trainable"]
    for tensor in manifest:
        assert tensor.kind == ("parameter" if tensor.trainable else "buffer")
        assert tensor.storage == "variables/variables.data-00000-of-00001"
    signatures = {
        sig: {side: {k: [v["dtype"], v["shape"]] for k, v in spec[side].items()}
              for side in ("inputs", "outputs")}
        for sig, spec in manifest.metadata["signatures"].items()}
    assert signatures == case["signatures"]
    assert manifest.metadata["tags"] == ["serve"]
    # Only the outer fields of saved_model.pb are walked: its GraphDef is never read.
    pb_size = (cases / case["path"] / "saved_model.pb").stat().st_size
    assert manifest.metadata["bytes_read"] < pb_size


def test_keras_savedmodel_names_and_trainability(saved: tuple[Path, dict[str, Any]]) -> None:
    cases, _ = saved
    manifest = registry.read(cases / "sm_keras_save")
    moving = manifest["_operations/2/moving_mean"]
    assert (moving.variable_name, moving.trainable, moving.kind) == ("bn/moving_mean", False,
                                                                     "buffer")
    kernel = manifest["_operations/1/_kernel"]
    assert (kernel.variable_name, kernel.trainable) == ("dense/kernel", True)
    module = registry.read(cases / "sm_module")
    assert module["labels"].dtype == "string" and module["seen"].trainable is False
    top = module.metadata["signatures"]["serving_default"]["outputs"]["top"]
    assert top == {"dtype": "int64", "shape": [None]}


def copy_fixture(tmp_path: Path) -> Path:
    """A writable copy of the committed tf.Module SavedModel."""
    target = tmp_path / "model"
    shutil.copytree(FIXTURE, target)
    for golden in target.glob("*.golden.json"):
        golden.unlink()
    return target


def test_symlink_out_of_the_directory_is_refused(tmp_path: Path) -> None:
    model = copy_fixture(tmp_path)
    outside = tmp_path / "elsewhere.index"
    index = model / "variables" / "variables.index"
    index.rename(outside)
    index.symlink_to(outside)
    with pytest.raises(CkptdiffError, match="link leading out of the SavedModel directory"):
        registry.read(model)
    index.unlink()
    shutil.copy(outside, model / "variables" / "real.index")
    index.symlink_to("real.index")  # a link that stays inside is fine
    assert len(registry.read(model)) == 2


def test_variables_directory_linked_elsewhere_is_refused(tmp_path: Path) -> None:
    model = copy_fixture(tmp_path)
    (model / "variables").rename(tmp_path / "vars")
    (model / "variables").symlink_to(tmp_path / "vars")
    with pytest.raises(CkptdiffError, match="link leading out"):
        registry.read(model)


def test_savedmodel_without_variables(tmp_path: Path) -> None:
    model = copy_fixture(tmp_path)
    shutil.rmtree(model / "variables")
    manifest = registry.read(model)
    assert len(manifest) == 0 and "serving_default" in manifest.metadata["signatures"]


def test_text_savedmodel_and_container_keys_are_clear_errors(tmp_path: Path) -> None:
    model = copy_fixture(tmp_path)
    with pytest.raises(UsageError, match="--key"):
        registry.read(model, "serving_default")
    (model / "saved_model.pb").rename(model / "saved_model.pbtxt")
    with pytest.raises(CkptdiffError, match="text saved_model.pbtxt"):
        registry.read(model)


def _with_extra_object(source: Path, target: Path) -> int:
    """Copy the SavedModel at ``source`` with one more object at node 1, every later node id
    shifted (as SavedModels of other TensorFlow/Keras versions differ from their checkpoint's
    object graph); returns the new node count. Edited with TensorFlow's own protos."""
    from tensorflow.core.protobuf import saved_model_pb2, saved_object_graph_pb2

    shutil.copytree(source, target)
    model = saved_model_pb2.SavedModel()
    model.ParseFromString((source / "saved_model.pb").read_bytes())
    graph = model.meta_graphs[0].object_graph_def

    def shift(node_id: int) -> int:
        return node_id if node_id == 0 else node_id + 1

    for node in graph.nodes:
        for child in node.children:
            child.node_id = shift(child.node_id)
        for dependency in node.dependencies:
            dependency.node_id = shift(dependency.node_id)
        for slot in node.slot_variables:
            slot.original_variable_node_id = shift(slot.original_variable_node_id)
            slot.slot_variable_node_id = shift(slot.slot_variable_node_id)
    for function in graph.concrete_functions.values():
        function.bound_inputs[:] = [shift(i) for i in function.bound_inputs]
    extra = saved_object_graph_pb2.SavedObject()
    extra.user_object.identifier = "trackable_dict_wrapper"
    extra.user_object.version.producer = 1
    nodes = list(graph.nodes)
    del graph.nodes[:]
    graph.nodes.extend([nodes[0], extra, *nodes[1:]])
    graph.nodes[0].children.add(node_id=1, local_name="added_by_another_version")
    (target / "saved_model.pb").write_bytes(model.SerializeToString())
    return len(graph.nodes)


def test_object_graphs_that_differ_are_paired_by_name(saved: tuple[Path, dict[str, Any]],
                                                      tmp_path: Path) -> None:
    pytest.importorskip("tensorflow", reason="TensorFlow edits and loads the SavedModel")
    import tensorflow as tf

    cases, _ = saved
    original = cases / "sm_keras_save"
    edited = tmp_path / "edited"
    nodes = _with_extra_object(original, edited)
    tf.saved_model.load(str(edited))  # TensorFlow loads it: so must ckptdiff
    before, after = registry.read(original), registry.read(edited)
    assert after.metadata["object_graph_nodes"] == nodes - 1  # the checkpoint's graph
    assert [(t.key, t.shape, t.trainable, t.kind, t.variable_name) for t in after] == [
        (t.key, t.shape, t.trainable, t.kind, t.variable_name) for t in before]
    assert after["_operations/2/moving_mean"].variable_name == "bn/moving_mean"
