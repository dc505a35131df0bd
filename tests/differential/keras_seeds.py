"""Keras seed files for differential fuzzing, written by Keras 3 itself.

Keras imports TensorFlow (seconds, and hundreds of MiB the test process need not keep), so the
files are made once per process by running this module in a subprocess, which prints them as a
JSON object of base64 texts. The models are tiny and seeded, and HDF5 files written by h5py carry
no timestamps, so the bytes are the same on every run of one Keras version.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def _write_seeds(folder: Path) -> dict[str, str]:
    """Make the seed files in ``folder``; their names by seed name."""
    import h5py
    import keras
    from keras.src.legacy.saving import legacy_h5_format

    keras.utils.set_random_seed(0)
    sequential = keras.Sequential([
        keras.Input((3,)), keras.layers.Dense(2, name="d1"), keras.layers.BatchNormalization(),
        keras.layers.Dense(1, use_bias=False)])
    inputs = keras.Input((4, 3))
    hidden = keras.layers.LSTM(2)(inputs)
    outputs = keras.layers.Dense(1, dtype="bfloat16")(hidden)
    functional = keras.Model(inputs, outputs)
    names = {"keras3/sequential": "sequential.weights.h5", "keras3/lstm": "lstm.weights.h5",
             "h5/weights": "weights.h5", "h5/model": "model.h5"}
    sequential.save_weights(folder / names["keras3/sequential"])
    functional.save_weights(folder / names["keras3/lstm"])
    with h5py.File(folder / names["h5/weights"], "w") as handle:  # a Keras 2-style weights file
        legacy_h5_format.save_weights_to_hdf5_group(handle, sequential)
    sequential.compile("adam", "mse")  # a full model with its optimizer's slots
    sequential.fit(keras.ops.ones((2, 3)), keras.ops.ones((2, 1)), verbose=0)
    sequential.save(folder / names["h5/model"])
    return names


def _main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        names = _write_seeds(folder)
        print(json.dumps({seed: base64.b64encode((folder / name).read_bytes()).decode()
                          for seed, name in names.items()}))


@functools.cache
def keras_seed_files() -> dict[str, bytes]:
    """Seed name -> file bytes (``keras3/…`` are ``.weights.h5``, ``h5/…`` legacy ``.h5``)."""
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3",
               CUDA_VISIBLE_DEVICES="")
    done = subprocess.run([sys.executable, __file__],
                          capture_output=True, text=True, env=env, check=False, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"making the Keras seeds failed:\n{done.stderr[-2000:]}")
    encoded = json.loads(done.stdout.strip().splitlines()[-1])
    return {name: base64.b64decode(text) for name, text in encoded.items()}


if __name__ == "__main__":
    _main()
