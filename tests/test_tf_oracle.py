"""tf.train checkpoints read by ckptdiff against TensorFlow itself as the oracle.

The checkpoints are made by testdata/readers/tf/make_oracle_cases.py in a child process (so this
process never imports TensorFlow), together with what ``tf.train.list_variables`` and
``load_checkpoint`` report; they are cached in pytest's cache, keyed by the generator's source
and the TensorFlow version.
"""

from __future__ import annotations

import atexit
import hashlib
import importlib.metadata
import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

import ckptdiff.readers as registry
from ckptdiff.dtypes import DTYPE_BITS
from ckptdiff.manifest import Manifest, TensorInfo

ROOT = Path(__file__).resolve().parent.parent
GENERATOR = ROOT / "testdata" / "readers" / "tf" / "make_oracle_cases.py"
_FALLBACK: dict[str, Path] = {}
TF_OTHER = {"resource", "variant", "qint8", "quint8", "qint16", "quint16", "qint32"}


def tensorflow_version() -> str:
    """The installed TensorFlow distribution's version, without importing it."""
    for dist in ("tensorflow-cpu", "tensorflow"):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "unknown"


def generated_cases(config: pytest.Config) -> Path:
    """The folder of TF-made cases (built once per generator version, then reused)."""
    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip("tensorflow is not installed (pip install tensorflow-cpu)")
    key = hashlib.sha256(GENERATOR.read_bytes() + tensorflow_version().encode()).hexdigest()[:16]
    cache = getattr(config, "cache", None)
    if cache is not None:
        final = cache.mkdir(f"tf_oracle_{key}")
    else:  # -p no:cacheprovider: one temporary folder for this process
        if key not in _FALLBACK:
            _FALLBACK[key] = Path(tempfile.mkdtemp(prefix="ckptdiff-tf-oracle-"))
            atexit.register(shutil.rmtree, _FALLBACK[key], True)
        final = _FALLBACK[key]
    if (final / "oracle.json").exists():
        return final
    work = final.with_name(final.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    result = subprocess.run([sys.executable, str(GENERATOR), str(work)], capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    shutil.rmtree(final)
    work.rename(final)
    return final


@pytest.fixture(scope="session")
def cases(request: pytest.FixtureRequest) -> Path:
    """Folder of generated checkpoints and SavedModels, with oracle.json."""
    return generated_cases(request.config)


@pytest.fixture(scope="session")
def oracle(cases: Path) -> dict[str, Any]:
    """TensorFlow's account of every generated case."""
    data: dict[str, Any] = json.loads((cases / "oracle.json").read_text())
    return data


def raw_key(tensor: TensorInfo) -> str:
    """The key as stored in the bundle (TF2 keeps it as the first alias)."""
    return tensor.aliases[0] if tensor.aliases else tensor.key


def assert_matches_listing(manifest: Manifest, listing: list[list[Any]], tf2: bool) -> None:
    """Raw keys, shapes and dtypes equal TensorFlow's list_variables / dtype map exactly."""
    expected = {key: (shape, dtype) for key, shape, dtype in listing}
    if tf2:
        assert expected.pop("_CHECKPOINTABLE_OBJECT_GRAPH") == ([], "string")
    # ckptdiff's dtype names are TensorFlow's, except that resource, variant … are "other".
    got = {raw_key(t): (list(t.shape), t.dtype) for t in manifest}
    for key, (shape, dtype) in expected.items():
        if dtype in TF_OTHER:
            expected[key] = (shape, "other")
    assert got == expected
    for tensor in manifest:
        bits = DTYPE_BITS[tensor.dtype]
        if bits is not None:
            assert tensor.nbytes == tensor.numel * bits // 8, tensor.key
        assert tensor.device is None


CHECKPOINTS = ["tf1_plain", "tf1_sharded", "tf2_adam", "tf2_model_only", "tf2_sgd",
               "tf2_v1_optimizer", "tf2_dtypes", "tf2_sharded", "tf2_many"]


@pytest.mark.parametrize("name", CHECKPOINTS)
def test_checkpoint_matches_tensorflow(name: str, cases: Path, oracle: dict[str, Any],
                                       manifest_schema: dict[str, Any]) -> None:
    import jsonschema

    case = oracle["checkpoints"][name]
    manifest = registry.read(cases / case["path"])
    assert manifest.format == "tf-checkpoint"
    assert manifest.metadata["tf_checkpoint_kind"] == case["kind"]
    assert manifest.metadata["checkpoint_prefix"] == Path(case["prefix"]).name
    assert_matches_listing(manifest, case["variables"], tf2=case["kind"] == "tf2")
    jsonschema.validate(json.loads(manifest.to_json()), manifest_schema)
    assert Manifest.from_json(manifest.to_json()) == manifest
    assert len(set(manifest.keys())) == len(manifest)
    for tensor in manifest:
        assert tensor.storage in manifest.metadata["shards"]
        assert tensor.slot_of is None or tensor.slot_of in manifest
    # The same checkpoint through each way of naming it reads the same.
    prefix = cases / case["prefix"]
    for form in (prefix, prefix.with_name(prefix.name + ".index"), prefix.parent):
        assert registry.read(form).tensors == manifest.tensors


def test_sharded_checkpoints_have_several_data_files(cases: Path, oracle: dict[str, Any]) -> None:
    for name, shards in (("tf1_sharded", 2), ("tf2_sharded", None)):
        manifest = registry.read(cases / oracle["checkpoints"][name]["path"])
        count = manifest.metadata["num_shards"]
        assert count > 1 and (shards is None or count == shards)
        assert len(manifest.metadata["shards"]) == count
        assert len({t.storage for t in manifest}) > 1
