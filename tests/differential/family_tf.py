"""tf.train checkpoints against TensorFlow's own checkpoint reader, ``tf.train.load_checkpoint``.

The loader side reads every variable's shape and dtype from the reader's maps and then every
tensor with ``get_tensor`` (TensorFlow checks sizes and CRC-32C only there); a TF2 checkpoint's
object graph is also parsed, as ``Checkpoint.restore`` parses it before restoring anything.

Keys: TensorFlow's reader keys tensors by their raw checkpoint key
(``model/dense/kernel/.ATTRIBUTES/VARIABLE_VALUE``), while ckptdiff names a TF2 checkpoint's
tensors by object-graph path (``model/dense/kernel``; the raw key stays an alias). The loader
side maps its raw keys into ckptdiff's key space by applying ckptdiff's naming
(``name_tensors`` + ``tensor_infos``) to *the loader's* reading: TensorFlow's keys, shapes and
dtypes, and the object graph bytes TensorFlow's ``get_tensor`` returned. So a differential still
shows wherever ckptdiff read other entries, shapes, dtypes or another object graph than
TensorFlow; the naming convention itself is ckptdiff's (tests/test_tf_objectgraph*.py test it).

Loader-only refusals: ckptdiff reads headers only, so it cannot see a CRC-32C mismatch of a
tensor's bytes (a flipped data byte, an edited ``crc32c`` field, an offset moved inside the
shard) nor a variant tensor's encoding, which TensorFlow finds only when reading the tensor.
Such a refusal is returned with ``loader_only`` set and counted as ``loader-only``, not as a
differential; every other refusal (sizes, shards, table, header, versions, slices, keys,
an abort of TensorFlow's reader) is one ckptdiff must match, by refusing the file.
"""

from __future__ import annotations

import faulthandler
import functools
import importlib.util
import json
import os
import pickle
import random
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.differential import tf_edits
from tests.differential.families import Data, Family, Seed
from tests.differential.sides import Reading

# What get_tensor says when it read and checked the tensor but cannot hand it to Python as a
# numpy array (a variant; a zero-element shape whose other dims overflow numpy's size): a
# restore (the C++ RestoreV2 op) has no such step, so it is not a refusal of the file.
_NUMPY_ONLY = ("not convertible to numpy dtype", "Failed to create numpy array")
DT_VARIANT = 21
# What get_tensor says when only a checksum over the tensor's bytes fails (tensor_bundle.cc);
# a variant tensor's bytes (ckptdiff has checked its shard and byte range) are all encoding,
# so any failure decoding them is one too.
_DATA_CHECKSUM = ("Checksum does not match", "length checksum does not match",
                  "The checksum after Variant", "Unable to parse VariantTensorDataProto")


def write_seed_checkpoints(folder: str) -> None:
    """Write every seed checkpoint under ``folder`` (runs in a child process: TensorFlow stays
    out of the harness's own process, whose memory and imports the benchmarks measure)."""
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import keras
    import tensorflow as tf

    root = Path(folder)
    tf.train.Checkpoint(
        w=tf.Variable(tf.reshape(tf.range(6, dtype=tf.float32), (2, 3))),
        step=tf.Variable(tf.constant(7, tf.int64)), name=tf.Variable(tf.constant(b"hello")),
        empty=tf.Variable(tf.zeros((0, 2))), h=tf.Variable(tf.ones((3,), tf.float16)),
        flag=tf.Variable([True, False]), bf=tf.Variable(tf.zeros((2,), tf.bfloat16)),
        nested={"a": tf.Variable(tf.ones((1,), tf.int32))},
    ).write(str(root / "tf2_dtypes" / "ckpt"))
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    optimizer = keras.optimizers.Adam()
    optimizer.build(model.trainable_variables)
    tf.train.Checkpoint(model=model, optimizer=optimizer).write(str(root / "keras" / "ckpt"))
    policy = tf.train.experimental.MaxShardSizePolicy(max_shard_size=40)
    tf.train.Checkpoint(**{f"v{i}": tf.Variable(tf.fill((4,), float(i))) for i in range(3)}).write(
        str(root / "sharded" / "ckpt"),
        options=tf.train.CheckpointOptions(experimental_sharding_callback=policy))
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.get_variable("net/w", initializer=tf.ones((2, 2)))
        tf.compat.v1.get_variable("net/b", initializer=tf.zeros((2,), tf.float64))
        tf.compat.v1.train.get_or_create_global_step()
        saver = tf.compat.v1.train.Saver()
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            saver.save(session, str(root / "tf1" / "model.ckpt"), write_meta_graph=False,
                       write_state=False)


@functools.cache
def _seed_files() -> dict[str, tuple[str, tuple[tuple[str, bytes], ...]]]:
    with tempfile.TemporaryDirectory() as folder:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        code = ("import sys; from tests.differential.family_tf import write_seed_checkpoints; "
                "write_seed_checkpoints(sys.argv[1])")
        subprocess.run([sys.executable, "-c", code, folder], check=True, env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)
        made = {}
        for directory in sorted(Path(folder).iterdir()):
            files = tuple(sorted((p.name, p.read_bytes()) for p in directory.iterdir()))
            prefix = next(n for n, _ in files if n.endswith(".index")).removesuffix(".index")
            made[directory.name] = (prefix, files)
        return made


def seeds() -> list[Seed]:
    """TF2 variables of many dtypes (scalars, a string, an empty tensor), a Keras model with its
    Adam optimizer, a two-shard checkpoint (one variable partitioned) and a TF1 ``Saver``
    checkpoint; none where TensorFlow is not installed (there is no loader to compare with)."""
    if importlib.util.find_spec("tensorflow") is None:
        return []
    return [Seed(f"tf/{name}", "tf-checkpoint", files, prefix)
            for name, (prefix, files) in _seed_files().items()]


def mutate(seed: Seed, others: list[Seed], rng: random.Random) -> tuple[str, Data]:
    """A structure-aware edit of the bundle (tests/differential/tf_edits.py)."""
    assert isinstance(seed.data, tuple)
    return tf_edits.mutate(seed.data, rng)


def _in_ckptdiff_keys(shapes: dict[str, tuple[int, ...]], codes: dict[str, int],
                      graph: bytes | None) -> tuple[tuple[str, tuple[int, ...], str], ...]:
    """The loader's tensors keyed as ckptdiff keys them (see the module docstring)."""
    from ckptdiff.readers.tf.bundle import Bundle, BundleEntry
    from ckptdiff.readers.tf.objectgraph import name_tensors
    from ckptdiff.readers.tf.proto.trackable_object_graph_pb2 import TrackableObjectGraph
    from ckptdiff.readers.tf.tensors import tensor_infos

    bundle = Bundle(Path("loader"), 1, False)
    for key in sorted(shapes, key=lambda k: k.encode("utf-8", "surrogateescape")):
        bundle.entries[key] = BundleEntry(key, codes[key], shapes[key], 0, 0, 0, 0)
    namings = None if graph is None else name_tensors(
        TrackableObjectGraph.FromString(graph), "loader")
    infos = tensor_infos(bundle, {0: ""}, namings)
    return tuple(sorted((info.key, tuple(info.shape), info.dtype) for info in infos))


def load(path: str) -> Reading:
    """:func:`read_with_tensorflow` in a child forked from the worker: TensorFlow's reader
    aborts the process on some entries (a value that is no ``BundleEntryProto``, a reference
    dtype, a slice of another dtype), and re-importing TensorFlow in a fresh worker each time
    costs seconds where a fork costs milliseconds."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: answer through the pipe, whatever happens, and never return
        try:
            faulthandler.disable()  # an abort is an answer here, not a report for pytest
            os.close(read_end)
            try:
                answer = read_with_tensorflow(path)
            except BaseException as exc:
                answer = Reading(False, reason=f"{type(exc).__name__}: {str(exc)[:200]}")
            with os.fdopen(write_end, "wb") as out:
                pickle.dump(answer, out)
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    if not data:
        return Reading(False, reason=f"TensorFlow's reader aborted (wait status {status})")
    reading: Reading = pickle.loads(data)
    return reading


def read_with_tensorflow(path: str) -> Reading:
    """``tf.train.load_checkpoint``: the shape and dtype maps, then every ``get_tensor``."""
    import tensorflow as tf
    from tensorflow.core.protobuf import trackable_object_graph_pb2

    reader = tf.train.load_checkpoint(path)
    shapes = {k: tuple(v) for k, v in reader.get_variable_to_shape_map().items()}
    codes = {k: v.as_datatype_enum for k, v in reader.get_variable_to_dtype_map().items()}
    checksums: list[str] = []
    values = {}
    for key in sorted(shapes):
        try:
            values[key] = reader.get_tensor(key)
        except Exception as exc:  # the reader raises a bare OpError, whatever the code
            if any(text in str(exc) for text in _NUMPY_ONLY):
                continue  # read and checked by TensorFlow; only the harness's copy failed
            if codes[key] != DT_VARIANT and not any(t in str(exc) for t in _DATA_CHECKSUM):
                raise
            checksums.append(f"{key}: {str(exc).splitlines()[0][:120]}")
    if checksums:
        return Reading(False, reason="get_tensor: " + json.dumps(checksums)[:200],
                       loader_only=True)
    graph = None
    if "_CHECKPOINTABLE_OBJECT_GRAPH" in shapes:
        graph = values["_CHECKPOINTABLE_OBJECT_GRAPH"]
        trackable_object_graph_pb2.TrackableObjectGraph.FromString(graph)  # as restore does
    return Reading(True, _in_ckptdiff_keys(shapes, codes, graph))


# TensorFlow reserves address space far beyond what it touches: the cap is on that, not RSS.
FAMILIES = [Family("tf-checkpoint", seeds, mutate, load, imports=("tensorflow",),
                   memory=16 << 30)]
