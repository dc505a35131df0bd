"""Build the rename evaluation set from real model code: ``python tests/rename_eval/make_cases.py``.

Every case is a source manifest (what a checkpoint holds), a target manifest (what a model
expects) and the true pairs. Sources are state dicts of real models (torch ``nn``, transformers
with small configs) or Keras 3 ``.weights.h5`` files read by ckptdiff's Keras reader; targets are
live models as ckptdiff's targets see them. The true pairs come from how each source was made
(the wrapper that added a prefix, the legacy names a library used, the layer that was inserted),
never from the engine. ``ambiguous`` lists true pairs that no tool can establish from names and
shapes (two same-shaped tensors renamed to unrelated names): they do not count for recall, and a
suggestion for them counts as wrong unless it is the true one.

Writes ``cases/<name>.json``; needs torch, transformers and keras.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from tests.rename_eval.models_keras import KERAS_CASES  # noqa: E402
from tests.rename_eval.models_torch import TORCH_CASES  # noqa: E402

import ckptdiff  # noqa: E402
from ckptdiff.manifest import Manifest  # noqa: E402

OUT = Path(__file__).resolve().parent / "cases"


def compact(manifest: Manifest) -> dict[str, Any]:
    """The fields the matcher uses, nothing else (keeps the committed files small)."""
    tensors = []
    for info in manifest.tensors:
        entry: dict[str, Any] = {"key": info.key, "shape": list(info.shape), "dtype": info.dtype}
        if info.storage and "/vars/" in info.storage:
            entry["storage"] = info.storage
        if info.aliases:
            entry["aliases"] = list(info.aliases)
        if info.kind != "parameter":
            entry["kind"] = info.kind
        tensors.append(entry)
    keep = {k: v for k, v in manifest.metadata.items()
            if k in ("live_model", "non_persistent_buffers")}
    return {"format": manifest.format, "tensors": tensors, "metadata": keep}


def write_case(name: str, description: str, source: Manifest, target: Manifest,
               expected: list[tuple[str, str]], ambiguous: list[tuple[str, str]]) -> None:
    """Check the truth against both manifests and write the case file."""
    source_keys, target_keys = source.by_key, target.by_key
    for s, t in expected + ambiguous:
        assert s in source_keys and t in target_keys, (name, s, t)
    document = {
        "name": name, "description": description,
        "source": compact(source), "target": compact(target),
        "expected": sorted([list(p) for p in expected]),
        "ambiguous": sorted([list(p) for p in ambiguous]),
    }
    OUT.mkdir(exist_ok=True)
    (OUT / f"{name}.json").write_text(json.dumps(document, indent=None, separators=(",", ":"))
                                      + "\n")
    print(f"{name}: {len(source.tensors)} -> {len(target.tensors)} tensors, "
          f"{len(expected)} expected pairs")


def pairs_by(source: Manifest, target: Manifest,
             rename: Callable[[str], str | None]) -> list[tuple[str, str]]:
    """True pairs: source keys whose renamed key the target has under another name."""
    found = []
    for info in source.tensors:
        new = rename(info.key)
        if new is not None and new != info.key and new in target.by_key:
            found.append((info.key, new))
    return found


def main() -> None:
    """Build every case."""
    with tempfile.TemporaryDirectory() as tmp:
        for build in (*TORCH_CASES, *KERAS_CASES):
            name, description, source, target, truth = build(Path(tmp))
            expected, ambiguous = truth if isinstance(truth, tuple) else (truth, [])
            if callable(expected):
                expected = pairs_by(source, target, expected)
            write_case(name, description, source, target, expected, ambiguous)
    print(f"ckptdiff {ckptdiff.__version__}: wrote {len(list(OUT.glob('*.json')))} cases")


if __name__ == "__main__":
    main()
