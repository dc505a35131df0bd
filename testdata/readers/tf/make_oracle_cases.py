"""Build TensorFlow checkpoints and SavedModels for the oracle tests, plus TF's own account of them.

    python testdata/readers/tf/make_oracle_cases.py OUT_DIR

Writes one folder per case under OUT_DIR and ``OUT_DIR/oracle.json``: for every case, what
``tf.train.list_variables`` / ``load_checkpoint`` report (key, shape, dtype name), and for
SavedModels each variable's ``trainable`` flag (from TensorFlow's own protos) and the signatures
as ``tf.saved_model.load`` sees them. tests/test_tf_oracle.py compares ckptdiff with this.
Everything runs in this one process: TF1 graphs are built inside ``tf.Graph()`` contexts.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def listing(tf: Any, prefix: str) -> list[list[Any]]:
    """[key, shape, dtype name] for every variable TensorFlow lists, sorted by key."""
    dtypes = tf.train.load_checkpoint(prefix).get_variable_to_dtype_map()
    return [[key, list(shape), dtypes[key].name] for key, shape in tf.train.list_variables(prefix)]


def tf1_graph(tf: Any, out: Path, *, sharded: bool) -> str:
    """A TF1 Saver checkpoint built in graph mode (on two logical CPUs when sharded)."""
    v1 = tf.compat.v1
    with tf.Graph().as_default() as graph:
        with tf.device("/cpu:0"):
            kernel = v1.get_variable("net/conv/kernel", [3, 3, 2, 4])
            step = v1.train.get_or_create_global_step()
            v1.get_variable("net/bn/moving_mean", [4], trainable=False)
        with tf.device("/cpu:1" if sharded else "/cpu:0"):
            bias = v1.get_variable("net/fc/bias", [4], dtype=tf.float16)
            v1.get_variable("vocab", initializer=tf.constant(["a", "", "ünï"]), trainable=False)
            v1.get_variable("title", initializer=tf.constant("x" * 300), trainable=False)
            v1.get_variable("half_b", [2, 2], dtype=tf.bfloat16, trainable=False)
            emb = v1.get_variable("emb", [10, 3], partitioner=v1.fixed_size_partitioner(2))
        loss = tf.reduce_sum(kernel) + tf.reduce_sum(tf.cast(bias, tf.float32)) + tf.reduce_sum(emb)
        optimizer = v1.train.AdamOptimizer() if sharded else v1.train.MomentumOptimizer(0.1, 0.9)
        train = optimizer.minimize(loss, global_step=step)
        saver = v1.train.Saver(sharded=sharded)
        with v1.Session(graph=graph) as session:
            session.run(v1.global_variables_initializer())
            session.run(train)
            return str(saver.save(session, str(out / "model.ckpt"), global_step=step))


def keras_model(keras: Any, functional: bool) -> Any:
    """A small Keras model with trainable and non-trainable weights."""
    if not functional:
        return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="hidden"),
                                 keras.layers.Dense(2, name="head")])
    inputs = keras.Input((4,), name="features")
    x = keras.layers.Dense(5, name="dense")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    return keras.Model(inputs, keras.layers.Dense(2, name="logits")(x))


def trained(tf: Any, keras: Any, model: Any, optimizer: Any) -> None:
    """One apply_gradients step, so the optimizer's slot variables exist."""
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(model(tf.ones([2, 4]), training=True))
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))


def tf2_cases(tf: Any, keras: Any, out: Path) -> dict[str, str]:
    """TF2 object-based checkpoints; returns case name -> path to read (relative to ``out``)."""
    keras.utils.set_random_seed(1)
    paths: dict[str, str] = {}
    model = keras_model(keras, functional=True)
    adam = keras.optimizers.Adam()
    trained(tf, keras, model, adam)
    step = tf.Variable(12, dtype=tf.int64)
    tf.train.Checkpoint(model=model, optimizer=adam, step=step).save(str(out / "tf2_adam/ckpt"))
    paths["tf2_adam"] = "tf2_adam"
    tf.train.Checkpoint(model=model).save(str(out / "tf2_model_only/ckpt"))
    paths["tf2_model_only"] = "tf2_model_only/ckpt-1"
    seq = keras_model(keras, functional=False)
    sgd = keras.optimizers.SGD(0.1, momentum=0.9)
    trained(tf, keras, seq, sgd)
    tf.train.Checkpoint(model=seq, optimizer=sgd).save(str(out / "tf2_sgd/ckpt"))
    paths["tf2_sgd"] = "tf2_sgd/ckpt-1.index"

    module = tf.Module()
    module.w = tf.Variable(tf.ones([2, 3]), name="w")
    module.b = tf.Variable(tf.zeros([3]), name="b")
    v1_adam = tf.compat.v1.train.AdamOptimizer(0.1)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(module.w) + tf.reduce_sum(module.b)
    v1_adam.apply_gradients(zip(tape.gradient(loss, [module.w, module.b]), [module.w, module.b],
                                strict=True))
    tf.train.Checkpoint(net=module, opt=v1_adam).save(str(out / "tf2_v1_optimizer/ckpt"))
    paths["tf2_v1_optimizer"] = "tf2_v1_optimizer/ckpt-1"

    dtypes = {name: tf.Variable(tf.ones([2, 3], getattr(tf, name))) for name in (
        "float64", "float32", "float16", "bfloat16", "int8", "int16", "int32", "int64", "uint8",
        "complex64", "complex128")}
    dtypes["flag"] = tf.Variable([True, False])
    dtypes["scalar"] = tf.Variable(3.5)
    dtypes["empty"] = tf.Variable(tf.zeros([0, 4]))
    dtypes["text"] = tf.Variable("héllo")
    dtypes["texts"] = tf.Variable(["", "a", "bc" * 100])
    # Non-variable state: a tf.data iterator (a variant tensor) and a lookup table's keys/values.
    dtypes["iterator"] = iter(tf.data.Dataset.range(5))
    next(dtypes["iterator"])
    table = tf.lookup.experimental.MutableHashTable(tf.string, tf.int64, default_value=-1)
    table.insert(tf.constant(["a", "b"]), tf.constant([1, 2], tf.int64))
    dtypes["table"] = table
    tf.train.Checkpoint(**dtypes).save(str(out / "tf2_dtypes/ckpt"))
    paths["tf2_dtypes"] = "tf2_dtypes/ckpt-1"

    parts = {f"p{i}": tf.Variable(tf.fill([40 + i], float(i))) for i in range(5)}
    policy = tf.train.experimental.MaxShardSizePolicy(max_shard_size=300)
    tf.train.Checkpoint(**parts).save(
        str(out / "tf2_sharded/ckpt"),
        options=tf.train.CheckpointOptions(experimental_sharding_callback=policy))
    paths["tf2_sharded"] = "tf2_sharded/ckpt-1"

    # Enough keys, with little shared prefix, that the index spans several 256 KiB data blocks.
    many = tf.Module()
    many.table = {hashlib.sha1(str(i).encode()).hexdigest(): tf.Variable(float(i))
                  for i in range(7000)}
    tf.train.Checkpoint(many=many).save(str(out / "tf2_many/ckpt"))
    paths["tf2_many"] = "tf2_many/ckpt-1"
    return paths


def savedmodel_cases(tf: Any, keras: Any, out: Path) -> dict[str, str]:
    """SavedModels of a tf.Module and of a Keras model (export and tf.saved_model.save)."""

    class Affine(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.kernel = tf.Variable(tf.ones([4, 2]), name="kernel")
            self.offset = tf.Variable(tf.zeros([2], tf.float64), name="offset")
            self.seen = tf.Variable(0, dtype=tf.int64, trainable=False, name="seen")
            self.labels = tf.Variable(["no", "yes"], trainable=False, name="labels")

        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x"),
                                      tf.TensorSpec([], tf.int32, name="k")])
        def __call__(self, x: Any, k: Any) -> dict[str, Any]:
            y = tf.matmul(x, self.kernel) + tf.cast(self.offset, tf.float32)
            return {"scores": y, "top": tf.argmax(y, axis=1), "labels": self.labels}

    affine = Affine()
    tf.saved_model.save(affine, str(out / "sm_module"),
                        signatures={"serving_default": affine.__call__})
    model = keras_model(keras, functional=True)
    model.export(str(out / "sm_keras_export"), verbose=False)
    tf.saved_model.save(model, str(out / "sm_keras_save"))
    return {name: name for name in ("sm_module", "sm_keras_export", "sm_keras_save")}


def saved_model_oracle(tf: Any, directory: Path) -> dict[str, Any]:
    """TensorFlow's view of a SavedModel: variables, trainable flags, signatures."""
    from tensorflow.core.protobuf import saved_model_pb2, trackable_object_graph_pb2

    prefix = str(directory / "variables" / "variables")
    saved = saved_model_pb2.SavedModel.FromString((directory / "saved_model.pb").read_bytes())
    objects = saved.meta_graphs[0].object_graph_def
    graph = trackable_object_graph_pb2.TrackableObjectGraph.FromString(
        tf.train.load_checkpoint(prefix).get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"))
    trainable = {attr.checkpoint_key: objects.nodes[i].variable.trainable
                 for i, node in enumerate(graph.nodes) for attr in node.attributes
                 if objects.nodes[i].WhichOneof("kind") == "variable"}
    loaded = tf.saved_model.load(str(directory))
    signatures = {}
    for name, function in loaded.signatures.items():
        inputs = function.structured_input_signature[1]
        outputs = function.structured_outputs
        signatures[name] = {
            "inputs": {k: [s.dtype.name, s.shape.as_list()] for k, s in inputs.items()},
            "outputs": {k: [s.dtype.name, s.shape.as_list()] for k, s in outputs.items()},
        }
    return {"variables": listing(tf, prefix), "trainable": trainable, "signatures": signatures}


def main() -> None:
    """Build every case under ``sys.argv[1]`` and write ``oracle.json`` there."""
    out = Path(sys.argv[1])
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras

    oracle: dict[str, Any] = {"checkpoints": {}, "savedmodels": {}}
    for name, sharded in (("tf1_plain", False), ("tf1_sharded", True)):
        (out / name).mkdir(parents=True)
        prefix = tf1_graph(tf, out / name, sharded=sharded)
        path = name if sharded else str(Path(prefix).relative_to(out))
        oracle["checkpoints"][name] = {"path": path, "prefix": prefix, "kind": "tf1"}
    for name, path in tf2_cases(tf, keras, out).items():
        prefix = tf.train.latest_checkpoint(str(out / name))
        oracle["checkpoints"][name] = {"path": path, "prefix": prefix, "kind": "tf2"}
    for entry in oracle["checkpoints"].values():
        entry["variables"] = listing(tf, entry["prefix"])
        entry["prefix"] = str(Path(entry["prefix"]).relative_to(out))
    for name, path in savedmodel_cases(tf, keras, out).items():
        oracle["savedmodels"][name] = {"path": path, **saved_model_oracle(tf, out / path)}
    (out / "oracle.json").write_text(json.dumps(oracle, indent=1))


if __name__ == "__main__":
    main()
