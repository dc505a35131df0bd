"""The zip ``version`` record (and the ``.pt2`` ``archive_version``) as the real loaders read
them: ``torch.jit.load`` and ``torch.export.load`` open every archive with torch's stream
reader, which refuses a file-format version it cannot parse or outside 1 to 10 (as
``torch.load`` does); ``torch.export.load`` also requires ``archive_version`` to be exactly
``0``. ckptdiff's TorchScript and torch-export readers must refuse the same files."""

from __future__ import annotations

import io
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="the real loaders are the oracle")

from ckptdiff.errors import CkptdiffError  # noqa: E402
from ckptdiff.readers import read  # noqa: E402

VERSION = {"version", ".data/version"}
# (records to replace, new content or None to drop them, what torch does)
CASES = [
    (VERSION, b"1\n", True), (VERSION, b"10\n", True), (VERSION, b" 7", True),
    (VERSION, b"11\n", False), (VERSION, b"0\n", False), (VERSION, b"-1\n", False),
    (VERSION, b"x", False), (VERSION, b"18446744073709551617", False), (VERSION, None, False),
]
PT2_CASES = [({"archive_version"}, b"0", True), ({"archive_version"}, b"0\n", False),
             ({"archive_version"}, b"1", False), ({"archive_version"}, b"", False),
             ({"archive_version"}, None, False)]


class _Linear(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x)


@pytest.fixture(scope="module")
def archives() -> dict[str, bytes]:
    scripted, exported = io.BytesIO(), io.BytesIO()
    torch.jit.save(torch.jit.script(_Linear()), scripted)
    torch.export.save(torch.export.export(_Linear(), (torch.ones(1, 2),)), exported)
    return {"torchscript": scripted.getvalue(), "torch-export": exported.getvalue()}


def _rewrite(data: bytes, names: set[str], content: bytes | None) -> bytes:
    """The archive with every member named (below its root folder) in ``names`` replaced by
    ``content``, or dropped when it is None."""
    source, out = zipfile.ZipFile(io.BytesIO(data)), io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as target:
        for info in source.infolist():
            if info.filename.split("/", 1)[1] not in names:
                target.writestr(info.filename, source.read(info))
            elif content is not None:
                target.writestr(info.filename, content)
    return out.getvalue()


def _loads(loader: Callable[[str], object], path: Path) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            loader(str(path))
    except Exception:  # every refusal, of any type, is the loader's answer
        return False
    return True


def _check(data: bytes, path: Path, loader: Callable[[str], object], expected: bool,
           reader: str) -> None:
    path.write_bytes(data)
    assert _loads(loader, path) == expected  # the oracle says what the case claims
    try:
        manifest = read(path)
    except CkptdiffError as exc:
        assert not expected, str(exc)
        assert "version" in str(exc)
        return
    assert expected, "ckptdiff read a file the loader refuses"
    assert manifest.format == reader


@pytest.mark.parametrize(("names", "content", "expected"), CASES)
def test_torchscript_version_record(archives: dict[str, bytes], tmp_path: Path,
                                    names: set[str], content: bytes | None,
                                    expected: bool) -> None:
    data = _rewrite(archives["torchscript"], names, content)
    _check(data, tmp_path / "m.pt", torch.jit.load, expected, "torchscript")


@pytest.mark.parametrize(("names", "content", "expected"), CASES + PT2_CASES)
def test_pt2_version_records(archives: dict[str, bytes], tmp_path: Path, names: set[str],
                             content: bytes | None, expected: bool) -> None:
    data = _rewrite(archives["torch-export"], names, content)
    _check(data, tmp_path / "m.pt2", torch.export.load, expected, "torch-export")
