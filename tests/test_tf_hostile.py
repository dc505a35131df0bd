"""Missing and short data shards, broken state files, saved_model.pb damage, hostile graphs."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.test_tf_corruption import FIXTURES, FUZZ, outcome

import ckptdiff.readers as registry
from ckptdiff.errors import CkptdiffError, CorruptFileError
from ckptdiff.readers.tf.bundle import read_bundle
from ckptdiff.readers.tf.checkpoint import TFCheckpointReader
from ckptdiff.readers.tf.objectgraph import name_tensors
from ckptdiff.readers.tf.proto.trackable_object_graph_pb2 import TrackableObjectGraph
from ckptdiff.readers.tf.savedmodel import TFSavedModelReader
from ckptdiff.readers.tf.tensors import OBJECT_GRAPH_KEY


def fixture_copy(tmp_path: Path, folder: str) -> Path:
    target = tmp_path / folder
    shutil.copytree(FIXTURES / folder, target)
    for golden in target.rglob("*.golden.json"):
        golden.unlink()
    return target


def test_missing_data_shard_is_named(tmp_path: Path) -> None:
    folder = fixture_copy(tmp_path, "tf1_saver")
    (folder / "model.ckpt-1.data-00001-of-00002").unlink()
    with pytest.raises(CorruptFileError, match=r"data shard model\.ckpt-1\.data-00001-of-00002 "
                                               r"is missing \(shard 1 of 2\)"):
        registry.read(folder)


def test_short_data_shard_is_named(tmp_path: Path) -> None:
    folder = fixture_copy(tmp_path, "tf2_sharded")
    shard = folder / "ckpt-1.data-00003-of-00004"
    shard.write_bytes(shard.read_bytes()[:-1])
    with pytest.raises(CorruptFileError, match=r"ckpt-1\.data-00003-of-00004 is .* truncated"):
        registry.read(folder / "ckpt-1")


def test_damaged_object_graph_fails_its_checksum(tmp_path: Path) -> None:
    folder = fixture_copy(tmp_path, "tf2_keras")
    shard = folder / "ckpt-1.data-00000-of-00001"
    graph = read_bundle(folder / "ckpt-1.index", folder / "ckpt-1", "x").entries[OBJECT_GRAPH_KEY]
    data = bytearray(shard.read_bytes())
    data[graph.offset + graph.size - 3] ^= 0x01  # inside the serialized graph
    shard.write_bytes(bytes(data))
    with pytest.raises(CorruptFileError, match="_CHECKPOINTABLE_OBJECT_GRAPH"):
        registry.read(folder / "ckpt-1")


def test_state_file_problems(tmp_path: Path) -> None:
    folder = fixture_copy(tmp_path, "tf2_keras")
    state = folder / "checkpoint"
    state.write_text('model_checkpoint_path: "ckpt-9"\n')
    with pytest.raises(CorruptFileError, match="names checkpoint 'ckpt-9', but ckpt-9.index"):
        registry.read(folder)
    state.write_text('model_checkpoint_path: "sub\\\\dir\\"x"\n')
    with pytest.raises(CorruptFileError, match="is not there"):
        registry.read(state)
    state.write_text("nothing useful\n")
    # Not a state file any more: the folder's single .index still names the checkpoint.
    assert len(registry.read(folder)) == 18
    (folder / "other.index").write_bytes((folder / "ckpt-1.index").read_bytes())
    with pytest.raises(CkptdiffError):
        registry.read(folder)


def test_every_way_to_name_a_checkpoint(tmp_path: Path) -> None:
    folder = fixture_copy(tmp_path, "tf2_sharded")
    expected = registry.read(folder / "ckpt-1").tensors
    for form in ("", "checkpoint", "ckpt-1.index", "ckpt-1.data-00002-of-00004"):
        assert registry.read(folder / form).tensors == expected, form
    assert not TFCheckpointReader().sniff(b"", folder / "ckpt-2")
    assert not TFCheckpointReader().sniff(b"", FIXTURES / "savedmodel_module")
    assert not TFSavedModelReader().sniff(b"", folder)
    with pytest.raises(CkptdiffError, match="--key"):
        registry.read(folder, "x")


def test_truncated_saved_model_pb(tmp_path: Path) -> None:
    model = fixture_copy(tmp_path, "savedmodel_module")
    pb = model / "saved_model.pb"
    original = pb.read_bytes()
    for cut in range(0, len(original), 37):
        pb.write_bytes(original[:cut])
        assert isinstance(outcome(model), CkptdiffError), cut


@FUZZ
@given(flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 7)), min_size=1,
                      max_size=6))
def test_bit_flips_in_saved_model_pb(flips: list[tuple[int, int]], tmp_path: Path) -> None:
    model = tmp_path / "model"
    if not model.exists():
        shutil.copytree(FIXTURES / "savedmodel_module", model)
    data = bytearray((FIXTURES / "savedmodel_module" / "saved_model.pb").read_bytes())
    for position, bit in flips:
        data[position % len(data)] ^= 1 << bit
    (model / "saved_model.pb").write_bytes(bytes(data))
    outcome(model)


names = st.sampled_from(["model", "optimizer", "_variables", "_trainable_variables", "0", "1",
                         "_iterations", "save_counter", "a/b", ".x", "_momentums", ""])
graphs = st.lists(st.fixed_dictionaries({
    "children": st.lists(st.tuples(st.integers(-1, 12), names), max_size=4),
    "attributes": st.lists(st.tuples(st.sampled_from(["VARIABLE_VALUE", "OTHER", ""]),
                                     st.text(max_size=8), st.text(max_size=12)), max_size=2),
    "slots": st.lists(st.tuples(st.integers(-1, 12), st.text(max_size=3), st.integers(-1, 12)),
                      max_size=2),
}), max_size=12)


@FUZZ
@given(nodes=graphs)
def test_any_object_graph_names_uniquely_or_is_refused(nodes: list[dict[str, Any]]) -> None:
    graph = TrackableObjectGraph()
    for spec in nodes:
        node = graph.nodes.add()
        for node_id, local in spec["children"]:
            node.children.add(node_id=node_id, local_name=local)
        for name, full, key in spec["attributes"]:
            node.attributes.add(name=name, full_name=full, checkpoint_key=key)
        for original, slot_name, slot in spec["slots"]:
            node.slot_variables.add(original_variable_node_id=original, slot_name=slot_name,
                                    slot_variable_node_id=slot)
    try:
        namings = name_tensors(graph, "ckpt")
    except CorruptFileError as exc:
        assert str(exc).startswith("ckpt: ")
        return
    keys = [naming.key for naming in namings.values()]
    assert len(keys) == len(set(keys))
    for naming in namings.values():
        assert naming.slot_of is None or naming.slot_of in keys
