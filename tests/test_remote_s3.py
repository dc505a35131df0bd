"""Remote checkpoints on S3 (a local moto server): the same manifests as local reads, read by
byte ranges, and a 100 MB checkpoint costs less than 1 % of its size."""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import ckptdiff.readers as registry
from ckptdiff.errors import CkptdiffError

pytest.importorskip("s3fs", reason="s3fs is not installed (pip install 'ckptdiff[dev]')")
moto_server = pytest.importorskip("moto.server", reason="moto[server] is not installed")

TESTDATA = Path(__file__).resolve().parent.parent / "testdata" / "readers"
BUCKET = "ckpts"
BIG = 100 * 1000 * 1000


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def s3() -> Iterator[Any]:
    """A moto S3 server on 127.0.0.1 with the committed reader fixtures under s3://ckpts/."""
    import s3fs

    port = _free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    s3fs.S3FileSystem.clear_instance_cache()
    fs = s3fs.S3FileSystem()
    fs.mkdir(BUCKET)
    for family in TESTDATA.iterdir():
        for local in family.rglob("*"):
            if local.is_file() and not local.name.endswith((".golden.json", ".py")):
                fs.put_file(str(local), f"{BUCKET}/{local.relative_to(TESTDATA)}")
    try:
        yield fs
    finally:
        s3fs.S3FileSystem.clear_instance_cache()
        server.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _cases() -> list[tuple[str, str | None]]:
    found = []
    for cases_file in sorted(TESTDATA.glob("*/cases.json")):
        for case in json.loads(cases_file.read_text()):
            found.append((f"{cases_file.parent.name}/{case['path']}", case.get("key")))
    return found


def _comparable(manifest: Any) -> dict[str, Any]:
    data = json.loads(manifest.to_json())
    data.pop("path")
    data["metadata"].pop("bytes_read")
    return dict(data)


@pytest.mark.parametrize(("case", "key"), _cases(), ids=[c for c, _ in _cases()])
def test_remote_manifest_equals_local(s3: Any, case: str, key: str | None) -> None:
    # Every conformance case: safetensors (single, folder, sharded), torch zip and legacy, TF
    # checkpoints and SavedModels, Keras .keras/.weights.h5/.h5.
    local = registry.read(TESTDATA / case, key)
    remote = registry.read(f"s3://{BUCKET}/{case}", key)
    assert remote.path == f"s3://{BUCKET}/{case}"
    assert _comparable(remote) == _comparable(local)
    assert remote.metadata["bytes_read"] > 0


def _big_safetensors(path: Path) -> None:
    # A real header, then zeros: 25M float32 values and a small second tensor.
    header = json.dumps({
        "big.weight": {"dtype": "F32", "shape": [25_000_000 - 16], "data_offsets": [0, BIG - 64]},
        "small.bias": {"dtype": "F32", "shape": [16], "data_offsets": [BIG - 64, BIG]},
    }).encode()
    with open(path, "wb") as handle:
        handle.write(struct.pack("<Q", len(header)) + header)
        handle.truncate(8 + len(header) + BIG)


def _big_torch(path: Path) -> None:
    # In a child, so that this process never imports torch (nor holds 100 MB).
    code = ("import sys, torch\n"
            "torch.save({'big.weight': torch.zeros(25_000_000 - 16), "
            "'small.bias': torch.zeros(16)}, sys.argv[1])\n")
    subprocess.run([sys.executable, "-c", code, str(path)], check=True)


@pytest.mark.parametrize("kind", ["safetensors", "torch"])
def test_a_100_mb_checkpoint_costs_under_one_percent(s3: Any, tmp_path: Path, kind: str) -> None:
    local = tmp_path / ("big.safetensors" if kind == "safetensors" else "big.pth")
    if kind == "torch":
        pytest.importorskip("torch", reason="torch is not installed")
        _big_torch(local)
    else:
        _big_safetensors(local)
    s3.put_file(str(local), f"{BUCKET}/big/{local.name}")
    size = local.stat().st_size
    assert size >= BIG
    manifest = registry.read(f"s3://{BUCKET}/big/{local.name}")
    assert [(t.key, t.shape) for t in manifest.tensors] == [
        ("big.weight", (25_000_000 - 16,)), ("small.bias", (16,))]
    assert manifest.metadata["bytes_read"] < size / 100, manifest.metadata["bytes_read"]


def test_missing_object_is_one_clear_line(s3: Any) -> None:
    with pytest.raises(CkptdiffError, match=r"^s3://ckpts/none\.safetensors: no such file"):
        registry.read(f"s3://{BUCKET}/none.safetensors")


def test_cli_inspect_and_diff_read_s3(s3: Any) -> None:
    from typer.testing import CliRunner

    from ckptdiff.cli.app import app

    url = f"s3://{BUCKET}/safetensors/tiny.safetensors"
    result = CliRunner().invoke(app, ["inspect", url, "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["path"] == url
    result = CliRunner().invoke(app, ["diff", url, str(TESTDATA / "safetensors" /
                                                       "tiny.safetensors")])
    assert result.exit_code == 0, result.output
