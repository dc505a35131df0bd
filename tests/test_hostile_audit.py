"""The whole hostile corpus, read in a child process under an audit hook: no process, exec of
code, socket, ``pickle.find_class``, import of a module not already loaded, file write or read
outside the corpus happens, and every file gives its expected outcome."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.hostile.bypass import BYPASS_CASES
from tests.hostile.corpus import write_corpus
from tests.hostile.files import PICKLE_CASES, ZIP_CASES
from tests.hostile.files_other import LFS_CASES, OTHER_CASES
from tests.hostile.mutate import TESTDATA

WARMUP = ["torch/cnn_bn.pth", "torch/tied_views_legacy.pt", "safetensors/tiny.safetensors",
          "safetensors/sharded", "tf/tf2_keras/ckpt-1", "tf/savedmodel_module",
          "keras/model.keras", "keras/legacy_model.h5", "keras/model.weights.h5",
          "dcp/model_optim", "gguf/tiny_llama.gguf", "numpy/weights.npy", "numpy/arrays.npz",
          "onnx/legacy.onnx", "torchscript/scripted.pt", "torch_export/module.pt2"]


def test_nothing_runs_under_an_audit_hook(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus")
    before = corpus.canary_state()
    cases = []
    for case in PICKLE_CASES + ZIP_CASES + BYPASS_CASES + OTHER_CASES + LFS_CASES:
        folder = tmp_path / "files" / case.name
        folder.mkdir(parents=True)
        cases.append(str(case.build(folder)))
    unknown = tmp_path / "unknown.bin"
    unknown.write_bytes(b"no known format")
    warmup = [str(TESTDATA / w) for w in WARMUP if (TESTDATA / w).exists()] + [str(unknown)]
    job = {"root": str(tmp_path), "warmup": warmup,
           "files": [str(f.path) for f in corpus.files] + cases}
    (tmp_path / "job.json").write_text(json.dumps(job))
    child = subprocess.run([sys.executable, "-m", "tests.hostile.audit_child",
                            str(tmp_path / "job.json"), str(tmp_path / "out.json")],
                           capture_output=True, text=True, timeout=600,
                           cwd=Path(__file__).resolve().parent.parent)
    assert child.returncode == 0, child.stderr[-3000:]
    result = json.loads((tmp_path / "out.json").read_text())
    assert result["events"] == [], result["events"][:5]
    assert result["forks"] == result["sandbox_runs"] > 0  # only the HDF5 sandbox forks
    assert result["kills"] == result["timeouts"]  # and kills only children out of time
    outcomes = {o["path"]: o for o in result["outcomes"]}
    assert len(outcomes) == len(corpus.files) + len(cases) >= 7000
    for item in corpus.files:
        outcome = outcomes[str(item.path)]
        assert outcome["outcome"] == "unsafe", outcome
        assert set(outcome["globals"]) == item.hostile.unsafe
        assert outcome["report"] == sorted(item.hostile.unsafe)
    assert not [o for o in outcomes.values() if "crash" in o["outcome"] + str(o["report"])]
    assert corpus.canary_state() == before
