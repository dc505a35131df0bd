"""The manifest graph on real key sets: Llama, BERT (tied weights), Keras/TF2 (``/``), shards."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from ckptdiff.api import read, resolve
from ckptdiff.graph.manifest import manifest_graph, shared_copies, tensor_nbytes
from ckptdiff.graph.tree import TreeNode
from ckptdiff.manifest import Manifest, TensorInfo
from ckptdiff.render.manifest_view import human_bytes, human_count, summary_line

TESTDATA = Path(__file__).resolve().parent.parent / "testdata" / "readers"


def llama_config() -> Any:
    transformers = pytest.importorskip("transformers")
    return transformers.LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=4,
                                    num_attention_heads=4, num_key_value_heads=2, vocab_size=100)


@pytest.fixture(scope="session")
def llama() -> Manifest:
    """What a small LlamaForCausalLM's load_state_dict expects (built on meta)."""
    transformers = pytest.importorskip("transformers")
    return resolve(transformers.LlamaForCausalLM, model_kwargs={"config": llama_config()})


@pytest.fixture(scope="session")
def bert() -> tuple[Manifest, Any]:
    """A small BertForMaskedLM (decoder tied to the word embeddings) and the model itself."""
    transformers = pytest.importorskip("transformers")
    config = transformers.BertConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                     num_attention_heads=4, vocab_size=100,
                                     max_position_embeddings=64)
    model = transformers.BertForMaskedLM(config)
    return resolve(model), model


def child(node: TreeNode[TensorInfo], name: str) -> TreeNode[TensorInfo]:
    return next(c for c in node.children if c.name == name)


def test_llama_tree_folds_its_layers(llama: Manifest) -> None:
    graph = manifest_graph(llama)
    root = graph.folded()
    assert [c.name for c in root.children] == ["model", "lm_head"]
    layers = child(child(root, "model"), "layers")
    assert [(c.name, c.count) for c in layers.children] == [("{0..3}", 4)]
    block = layers.children[0]
    assert [c.name for c in block.children] == [
        "self_attn", "mlp", "input_layernorm", "post_attention_layernorm"]
    each = graph.stats(block.group[0])
    assert each.tensors == 9
    assert graph.stats(block).params == 4 * each.params


def test_llama_counts_are_the_sums_of_tensor_sizes(llama: Manifest) -> None:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    graph = manifest_graph(llama)
    stats = graph.stats(graph.folded())
    assert stats.tensors == len(llama) == 39
    assert stats.params == sum(t.numel for t in llama.tensors)
    assert stats.nbytes == sum(t.nbytes or 0 for t in llama.tensors)
    assert stats.bytes_by_dtype == {"float32": stats.nbytes}
    with torch.device("meta"):
        model = transformers.LlamaForCausalLM(llama_config())
    assert stats.params == sum(p.numel() for p in model.parameters())
    # The inspect summary line and the tree agree on the totals.
    line = summary_line(llama)
    assert f"{human_count(stats.params)} params" in line and human_bytes(stats.nbytes) in line


def test_bert_tied_decoder_is_an_edge_and_counted_once(bert: tuple[Manifest, Any]) -> None:
    manifest, model = bert
    graph = manifest_graph(manifest)
    decoder = "cls.predictions.decoder.weight"
    embeddings = "bert.embeddings.word_embeddings.weight"
    assert ("alias", embeddings, decoder) in {(e.kind, e.source, e.target) for e in graph.edges}
    # The decoder's bias is tied to cls.predictions.bias as well.
    assert shared_copies(manifest) == {decoder, "cls.predictions.decoder.bias"}
    stats = graph.stats(graph.tree)
    persistent_buffers = sum(t.numel for t in manifest.tensors if t.kind == "buffer")
    # parameters() yields a tied parameter once: the graph counts its storage once too.
    assert stats.params == sum(p.numel() for p in model.parameters()) + persistent_buffers
    assert stats.nbytes == sum(tensor_nbytes(t) or 0 for t in manifest.tensors
                               if t.key not in shared_copies(manifest))
    assert stats.tensors == len(manifest)
    encoder = child(child(graph.folded(), "bert"), "encoder")
    assert [(c.name, c.count) for c in child(encoder, "layer").children] == [("{0,1}", 2)]


def keras_manifest(weights: list[Any]) -> Manifest:
    return Manifest("keras", "keras-model", tuple(
        TensorInfo(w.path, shape, "float32", nbytes=4 * math.prod(shape))
        for w, shape in ((w, tuple(int(d) for d in w.shape)) for w in weights)))


def test_keras_paths_split_on_slashes() -> None:
    keras = pytest.importorskip("keras")
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4, name="enc"),
                              keras.layers.BatchNormalization(name="bn"),
                              keras.layers.Dense(2, name="head")], name="net")
    graph = manifest_graph(keras_manifest(model.weights))
    net = graph.tree.children[0]
    assert net.name == "net" and [c.name for c in net.children] == ["enc", "bn", "head"]
    assert [(c.separator, c.name) for c in child(net, "enc").children] == [
        ("/", "kernel"), ("/", "bias")]
    assert graph.stats(graph.tree).params == model.count_params()


def test_tf2_checkpoint_folds_repeated_keras_layers(tmp_path: Path) -> None:
    tf = pytest.importorskip("tensorflow")
    keras = pytest.importorskip("keras")
    model = keras.Sequential([keras.Input((8,))] + [keras.layers.Dense(8) for _ in range(4)]
                             + [keras.layers.Dense(2)])
    prefix = tf.train.Checkpoint(model=model).write(str(tmp_path / "ckpt"))
    graph = manifest_graph(read(prefix))
    operations = graph.folded()
    while len(operations.children) == 1:
        operations = operations.children[0]
    assert operations.path == "model/_functional/_operations"
    assert [(c.name, c.count) for c in operations.children] == [("{1..4}", 4), ("5", 1)]
    assert graph.stats(graph.tree).params == model.count_params()


def test_optimizer_slots_point_at_their_variables() -> None:
    manifest = read(TESTDATA / "tf" / "tf2_keras")
    slots = [e for e in manifest_graph(manifest).edges if e.kind == "slot"]
    assert len(slots) == len([t for t in manifest.tensors if t.kind == "optimizer_slot"]) > 0
    for edge in slots:
        assert edge.target in manifest and manifest[edge.target].kind == "parameter"
        assert edge.source.endswith(("/momentum", "/velocity"))


def test_slot_of_by_variable_name_resolves_to_the_key() -> None:
    manifest = Manifest("m", "test", (
        TensorInfo("dense/kernel", (2, 2), "float32", variable_name="dense/kernel:0"),
        TensorInfo("opt/m", (2, 2), "float32", kind="optimizer_slot", slot_of="dense/kernel:0"),
        TensorInfo("opt/gone", (2,), "float32", kind="optimizer_slot", slot_of="elsewhere"),
    ))
    edges = {(e.source, e.target) for e in manifest_graph(manifest).edges}
    assert edges == {("opt/m", "dense/kernel"), ("opt/gone", "elsewhere")}


def test_shards_of_a_sharded_safetensors_checkpoint() -> None:
    manifest = read(TESTDATA / "safetensors" / "sharded")
    shards = manifest_graph(manifest).shards
    assert sorted(shards) == ["model-00001-of-00002.safetensors",
                              "model-00002-of-00002.safetensors"]
    assert sorted(k for keys in shards.values() for k in keys) == sorted(manifest.keys())


def test_torch_storage_records_are_not_shards() -> None:
    manifest = Manifest("m", "torch-zip", (
        TensorInfo("a", (1,), "float32", storage="archive/data/0"),
        TensorInfo("b", (1,), "float32", storage="archive/data/1")))
    assert manifest_graph(manifest).shards == {}


def test_filter_keeps_matching_keys_only(llama: Manifest) -> None:
    graph = manifest_graph(llama, "*.mlp.*")
    assert graph.selected == 12
    assert all(".mlp." in t.key for t in graph.tree.items())
