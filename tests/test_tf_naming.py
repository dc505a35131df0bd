"""How ckptdiff names and classifies TensorFlow checkpoint tensors (TF-made checkpoints)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.test_tf_oracle import generated_cases

import ckptdiff.readers as registry
from ckptdiff.manifest import Manifest
from ckptdiff.readers.base import CountingFile
from ckptdiff.readers.tf.sstable import TableReader


@pytest.fixture(scope="module")
def read_case(request: pytest.FixtureRequest) -> Any:
    """Read a generated checkpoint case by name."""
    cases = generated_cases(request.config)
    oracle = json.loads((cases / "oracle.json").read_text())

    def read(name: str) -> Manifest:
        return registry.read(cases / oracle["checkpoints"][name]["path"])

    return read


def test_tf2_keras_keys_follow_the_model_not_the_optimizer(read_case: Any) -> None:
    manifest = read_case("tf2_adam")
    kernel = manifest["model/_operations/1/_kernel"]
    # TensorFlow's own key runs through the optimizer's list of trained variables.
    assert kernel.aliases == ("optimizer/_trainable_variables/0/.ATTRIBUTES/VARIABLE_VALUE",)
    assert kernel.variable_name == "dense/kernel"
    assert kernel.kind == "parameter" and kernel.trainable is True
    moving = manifest["model/_operations/2/moving_mean"]
    assert moving.variable_name == "bn/moving_mean" and moving.trainable is None
    assert moving.aliases == ("model/_operations/2/moving_mean/.ATTRIBUTES/VARIABLE_VALUE",)


def test_tf2_keras_optimizer_slots_and_bookkeeping(read_case: Any) -> None:
    manifest = read_case("tf2_adam")
    trained = [t for t in manifest if t.trainable]
    slots = [t for t in manifest if t.kind == "optimizer_slot"]
    assert len(slots) == 2 * len(trained) == 12
    for slot in slots:
        owner = manifest[str(slot.slot_of)]
        assert owner.trainable and slot.shape == owner.shape
        assert slot.key in (f"optimizer/{owner.key}/momentum", f"optimizer/{owner.key}/velocity")
    others = {t.key for t in manifest if t.kind == "other"}
    assert others == {"optimizer/_iterations", "optimizer/_learning_rate", "save_counter", "step"}


def test_model_keys_are_the_same_with_or_without_an_optimizer(read_case: Any) -> None:
    with_optimizer = {t.key for t in read_case("tf2_adam") if t.kind == "parameter"}
    model_only = read_case("tf2_model_only")
    assert {t.key for t in model_only if t.kind == "parameter"} == with_optimizer
    # Without the optimizer, TensorFlow's keys are the readable ones plus the attribute suffix.
    for tensor in model_only:
        assert tensor.aliases == (tensor.key + "/.ATTRIBUTES/VARIABLE_VALUE",)


def test_keras_sgd_momentum_slots(read_case: Any) -> None:
    manifest = read_case("tf2_sgd")
    slots = {t.key: t.slot_of for t in manifest if t.kind == "optimizer_slot"}
    assert slots == {f"optimizer/{k}/momentum": k for k in (
        "model/_functional/_operations/1/_kernel", "model/_functional/_operations/1/bias",
        "model/_functional/_operations/2/_kernel", "model/_functional/_operations/2/bias")}
    assert manifest["model/_functional/_operations/2/bias"].variable_name == "sequential/head/bias"


def test_tf1_optimizer_in_a_tf2_checkpoint_uses_slot_records(read_case: Any) -> None:
    manifest = read_case("tf2_v1_optimizer")
    assert manifest["opt/net/w/m"].slot_of == "net/w"
    assert manifest["opt/net/b/v"].aliases == (
        "net/b/.OPTIMIZER_SLOT/opt/v/.ATTRIBUTES/VARIABLE_VALUE",)
    assert manifest["opt/beta1_power"].kind == "other"
    assert manifest["net/w"].variable_name == "w" and manifest["net/w"].trainable is True


def test_tf1_names_are_kept_and_classified(read_case: Any) -> None:
    manifest = read_case("tf1_plain")
    assert manifest["global_step"].kind == "other"
    assert manifest["net/conv/kernel/Momentum"].slot_of == "net/conv/kernel"
    assert manifest["net/conv/kernel"].trainable is True
    assert manifest["net/bn/moving_mean"].trainable is None
    assert all(not t.aliases and t.variable_name is None for t in manifest)
    sharded = read_case("tf1_sharded")
    assert {sharded["emb/Adam_1"].slot_of, sharded["beta1_power"].kind} == {"emb", "other"}


def test_partitioned_variables_are_one_tensor(read_case: Any) -> None:
    manifest = read_case("tf1_plain")
    assert manifest["emb"].shape == (10, 3) and manifest["emb"].nbytes == 120
    assert not any(tensor.key.startswith("\x00") for tensor in manifest)


def test_dtypes_and_string_sizes(read_case: Any) -> None:
    manifest = read_case("tf2_dtypes")
    for name in ("float64", "float32", "float16", "bfloat16", "int8", "int16", "int32",
                 "int64", "uint8", "complex64", "complex128"):
        assert manifest[name].dtype == name
    assert manifest["flag"].dtype == "bool" and manifest["flag"].nbytes == 2
    assert manifest["empty"].shape == (0, 4) and manifest["empty"].nbytes == 0
    # Strings: the stored size (varint lengths, a 4-byte checksum, then the bytes).
    assert manifest["text"].nbytes == 1 + 4 + len("héllo".encode())
    assert manifest["texts"].nbytes == (1 + 1 + 2) + 4 + (0 + 1 + 200)  # 200 needs 2 varint bytes
    assert manifest["scalar"].shape == ()
    # Saveables that are not variables: an iterator's variant state, a lookup table's contents.
    state = manifest["iterator/ITERATOR_STATE"]
    assert (state.dtype, state.kind) == ("other", "other")
    assert state.aliases == ("iterator/.ATTRIBUTES/ITERATOR_STATE",)
    assert manifest["table/table-keys"].dtype == "string"
    assert manifest["table/table-values"].kind == "other"


def test_many_keys_span_several_index_blocks(
    read_case: Any, request: pytest.FixtureRequest
) -> None:
    manifest = read_case("tf2_many")
    assert len(manifest) == 7001
    assert all(t.key.startswith("many/table/") for t in manifest if t.key != "save_counter")
    index = generated_cases(request.config) / "tf2_many" / "ckpt-1.index"
    with CountingFile(index) as file:
        table = TableReader(file, str(index))
        assert sum(1 for _ in table.entries()) == 7003  # header, object graph, 7001 variables
        assert table.blocks_read >= 3  # the index block and at least two data blocks
