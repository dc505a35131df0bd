"""Inspecting every Keras format imports neither tensorflow nor keras (h5py and numpy only)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from tests.test_keras_oracle import keras_models, save_all

FRAMEWORKS = ("tensorflow", "keras", "tf_keras", "jax", "torch")


def _run(script: str) -> list[str]:
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True)
    loaded: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return loaded


def test_reading_every_keras_format_imports_no_framework(tmp_path: Path) -> None:
    model = keras_models().custom_model()
    paths = [str(p) for p in save_all(model, tmp_path).values()]
    script = (
        "import sys, json\n"
        "import ckptdiff.readers as r\n"
        f"for path in {paths!r}:\n"
        "    m = r.read(path)\n"
        "    assert m.format.startswith('keras') and len(m) > 0, path\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {FRAMEWORKS!r}"
        " or m == 'h5py')))\n"
    )
    assert _run(script) == ["h5py"]


def test_recognising_models_imports_no_framework() -> None:
    pytest.importorskip("h5py")
    script = (
        "import sys, json\n"
        "from ckptdiff.targets.keras.model import is_keras_model\n"
        "class Model: pass\n"
        "assert not is_keras_model(Model()) and not is_keras_model(object())\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {FRAMEWORKS!r})))\n"
    )
    assert _run(script) == []
