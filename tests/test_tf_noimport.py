"""Reading every TensorFlow format imports neither tensorflow nor keras (fresh processes)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent.parent / "testdata" / "readers" / "tf"
HEAVY = ("tensorflow", "keras", "tf_keras", "torch", "jax", "h5py")
# One of each way in: prefix, checkpoint directory (TF1 state file), .index path, SavedModel
# directory and its saved_model.pb.
PATHS = ["tf2_keras/ckpt-1", "tf1_saver", "tf2_sharded/ckpt-1.index", "tf2_keras/checkpoint",
         "savedmodel_module", "savedmodel_module/saved_model.pb"]


def imported_after(code: str, *args: str) -> tuple[list[str], str]:
    """Heavy framework modules present after running ``code``, and its stdout."""
    script = (code + "\nimport sys, json\nprint(json.dumps(sorted(m for m in sys.modules"
              f" if m.split('.')[0] in {HEAVY!r})))")
    out = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.strip().splitlines()
    return list(json.loads(lines[-1])), "\n".join(lines[:-1])


def test_reading_every_tf_format_imports_no_framework() -> None:
    code = ("import sys\nimport ckptdiff.readers as r\n"
            "for p in sys.argv[1:]:\n    print(r.read(p).format)")
    modules, printed = imported_after(code, *(str(FIXTURES / p) for p in PATHS))
    assert modules == []
    assert printed.split() == ["tf-checkpoint"] * 4 + ["tf-savedmodel"] * 2


@pytest.mark.parametrize("path", PATHS)
def test_cli_inspect_json_imports_no_framework(path: str) -> None:
    code = ("import sys\nfrom ckptdiff.cli.app import app\n"
            "try:\n    app(['inspect', sys.argv[1], '--format', 'json'])\n"
            "except SystemExit as e:\n    assert e.code in (0, None), e.code\n")
    modules, printed = imported_after(code, str(FIXTURES / path))
    assert modules == []
    document = json.loads(printed)
    assert document["format"] in ("tf-checkpoint", "tf-savedmodel") and document["tensors"]
