"""http(s):// checkpoints: a local server on 127.0.0.1 that answers Range requests, as object
stores and the Hugging Face Hub do; the shards of an index are found beside it without listing."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import ckptdiff.readers as registry
from ckptdiff.errors import CkptdiffError

pytest.importorskip("fsspec", reason="fsspec is not installed")
pytest.importorskip("aiohttp", reason="aiohttp is not installed (fsspec's http needs it)")

TESTDATA = Path(__file__).resolve().parent.parent / "testdata" / "readers"


class RangeHandler(SimpleHTTPRequestHandler):
    """Static files with single-range support (``bytes=a-b``) and no logging."""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def send_head(self) -> Any:
        spec = self.headers.get("Range")
        path = Path(self.translate_path(self.path))
        if spec is None or not path.is_file():
            return super().send_head()
        start_text, _, end_text = spec.removeprefix("bytes=").partition("-")
        size = path.stat().st_size
        start = int(start_text)
        end = min(int(end_text) if end_text else size - 1, size - 1)
        handle = open(path, "rb")  # noqa: SIM115 - closed by the base class after copying
        handle.seek(start)
        self.send_response(206)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        return _Limited(handle, end - start + 1)


class _Limited:
    """A file that ends after ``count`` bytes (what ``copyfile`` sends for a range)."""

    def __init__(self, handle: Any, count: int) -> None:
        self._handle, self._left = handle, count

    def read(self, size: int = -1) -> bytes:
        size = self._left if size < 0 else min(size, self._left)
        data = self._handle.read(size)
        self._left -= len(data)
        return bytes(data)

    def close(self) -> None:
        self._handle.close()


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """http://127.0.0.1:<port>/ serving testdata/readers."""
    handler = partial(RangeHandler, directory=str(TESTDATA))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.parametrize("case", [
    "safetensors/tiny.safetensors", "safetensors/sharded/model.safetensors.index.json",
    "torch/cnn_bn.pth", "torch/tied_views_legacy.pt", "keras/model.weights.h5",
    "torch_sharded/model/pytorch_model.bin.index.json"])
def test_http_manifest_equals_local(server: str, case: str) -> None:
    local = registry.read(TESTDATA / case)
    remote = registry.read(f"{server}/{case}")
    assert remote.path == f"{server}/{case}"
    assert remote.format == local.format and remote.tensors == local.tensors
    assert remote.metadata["bytes_read"] > 0
    assert json.loads(remote.to_json())["tensors"] == json.loads(local.to_json())["tensors"]


def test_http_missing_file(server: str) -> None:
    with pytest.raises(CkptdiffError, match="no such file"):
        registry.read(f"{server}/safetensors/none.safetensors")
