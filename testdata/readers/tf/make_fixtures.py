"""Regenerate the tiny TensorFlow fixtures of this folder with the real tensorflow-cpu.

    .venv/bin/python testdata/readers/tf/make_fixtures.py

Then regenerate the goldens (tests/regen_golden.py) and review them. Fixtures:

- ``tf2_keras/``: tf.train.Checkpoint of a Keras 3 model (Dense + BatchNormalization) and its Adam
  optimizer after one apply_gradients, plus an int64 ``step``.
- ``tf1_saver/``: tf.compat.v1 Saver(sharded=True) over variables on two logical CPUs (two data
  shards), with float16, a string variable, a partitioned variable, Adam slots and global_step.
  Its ``checkpoint`` state file holds the absolute path TF1 writes (of a directory that is gone).
- ``tf2_sharded/``: tf.train.Checkpoint saved with a MaxShardSizePolicy: three data shards, and
  variables split into slices across them; bfloat16 and a string scalar.
- ``savedmodel_module/``: tf.saved_model.save of a tf.Module with a trainable and a
  non-trainable variable and a serving signature.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
HERE = Path(__file__).resolve().parent


def make_tf2_keras(out: Path) -> None:
    """Keras model + Adam under tf.train.Checkpoint."""
    import keras
    import numpy as np
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="dense"),
                              keras.layers.BatchNormalization(name="bn")])
    optimizer = keras.optimizers.Adam(1e-3)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(model(np.ones((2, 3), "float32"), training=True))
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
    step = tf.Variable(7, dtype=tf.int64)
    tf.train.Checkpoint(model=model, optimizer=optimizer, step=step).save(str(out / "ckpt"))


def make_tf1_saver(out: Path) -> None:
    """Sharded TF1 Saver checkpoint (run in a child process: it needs graph mode and 2 CPUs)."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    tf.compat.v1.disable_eager_execution()
    graph = tf.Graph()
    with graph.as_default():
        with tf.device("/cpu:0"):
            kernel = tf.compat.v1.get_variable("net/conv/kernel", shape=[2, 2, 1, 2],
                                               initializer=tf.compat.v1.ones_initializer())
            step = tf.compat.v1.train.get_or_create_global_step()
        with tf.device("/cpu:1"):
            bias = tf.compat.v1.get_variable("net/fc/bias", shape=[2], dtype=tf.float16,
                                             initializer=tf.compat.v1.zeros_initializer())
            tf.compat.v1.get_variable("vocab", initializer=tf.constant(["a", "bb"]),
                                      trainable=False)
            emb = tf.compat.v1.get_variable(
                "emb", shape=[4, 2], initializer=tf.compat.v1.ones_initializer(),
                partitioner=tf.compat.v1.fixed_size_partitioner(2))
        loss = (tf.reduce_sum(kernel) + tf.reduce_sum(tf.cast(bias, tf.float32))
                + tf.reduce_sum(emb))
        train = tf.compat.v1.train.AdamOptimizer().minimize(loss, global_step=step)
        saver = tf.compat.v1.train.Saver(sharded=True)
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            session.run(train)
            saver.save(session, str(out / "model.ckpt"), global_step=step)
    for meta in out.glob("*.meta"):
        meta.unlink()  # the MetaGraph is not part of the checkpoint (and not tiny)


def make_tf2_sharded(out: Path) -> None:
    """Three data shards and sliced variables via MaxShardSizePolicy."""
    import tensorflow as tf

    variables = {
        "a": tf.Variable(tf.ones([24], tf.float32)),
        "b": tf.Variable(tf.ones([4, 6], tf.bfloat16)),
        "c": tf.Variable(tf.zeros([10], tf.float32)),
        "name": tf.Variable("hello"),
    }
    policy = tf.train.experimental.MaxShardSizePolicy(max_shard_size=64)
    options = tf.train.CheckpointOptions(experimental_sharding_callback=policy)
    tf.train.Checkpoint(**variables).save(str(out / "ckpt"), options=options)


def make_savedmodel_module(out: Path) -> None:
    """A tf.Module SavedModel with a serving signature."""
    import tensorflow as tf

    class Scale(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight = tf.Variable(tf.ones([3, 2]), name="weight")
            self.calls = tf.Variable(0, dtype=tf.int32, trainable=False, name="calls")

        @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x")])
        def __call__(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"y": tf.matmul(x, self.weight)}

    module = Scale()
    tf.saved_model.save(module, str(out), signatures={"serving_default": module.__call__})
    fingerprint = out / "fingerprint.pb"
    if fingerprint.exists():
        fingerprint.unlink()  # changes on every save; not needed to read the model


MAKERS = {
    "tf2_keras": make_tf2_keras,
    "tf1_saver": make_tf1_saver,
    "tf2_sharded": make_tf2_sharded,
    "savedmodel_module": make_savedmodel_module,
}


def main() -> None:
    """Rebuild every fixture folder (each maker runs in its own process)."""
    if len(sys.argv) == 3:
        MAKERS[sys.argv[1]](Path(sys.argv[2]))
        return
    for name in MAKERS:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp) / name
            work.mkdir()
            subprocess.run([sys.executable, __file__, name, str(work)], check=True)
            target = HERE / name
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(work, target)
        size = sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
        print(f"wrote {name}/ ({size:,} bytes)")


if __name__ == "__main__":
    main()
