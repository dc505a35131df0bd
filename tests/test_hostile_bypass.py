"""The published scanner-bypass classes (tests/hostile/bypass.py), one test each: every file is
refused, naming the global (exit 3) or the ambiguity (exit 2), in one line. That the ZIP tricks
are live is shown by reading ``data.pkl`` both ways, with Python's ``zipfile`` and with torch's
own archive reader (records only, never unpickled); that nothing runs, by the audit-hook child
(tests/test_hostile_audit.py), which reads these files and the whole corpus, where each exotic
global is reached by every technique in every container form."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from tests.hostile.bypass import (
    BYPASS_CASES,
    EVIL,
    EXOTIC_GLOBALS,
    GOOD,
    archive_in_comment,
    two_central_directories,
)
from tests.hostile.files import Case
from tests.hostile.payloads import payloads

from ckptdiff.errors import CkptdiffError, UnsafeContentError
from ckptdiff.readers import read


@pytest.mark.parametrize("case", BYPASS_CASES, ids=[c.name for c in BYPASS_CASES])
def test_bypass_is_refused_in_one_line(case: Case, tmp_path: Path) -> None:
    path = case.build(tmp_path)
    with pytest.raises(CkptdiffError) as caught:
        read(path)
    assert type(caught.value) is case.error, caught.value
    message = str(caught.value)
    assert re.search(case.match, message) and "\n" not in message, message
    if isinstance(caught.value, UnsafeContentError):
        assert len(caught.value.globals) == 1 and "nothing was executed" in message


def _data_pkl_by_zipfile(data: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return archive.read("archive/data.pkl")


def _data_pkl_by_torch(data: bytes) -> bytes | None:
    torch = pytest.importorskip("torch", reason="torch's archive reader is the other reading")
    try:
        reader = torch._C.PyTorchFileReader(io.BytesIO(data))
        return bytes(reader.get_record("data.pkl"))
    except RuntimeError:
        return None


@pytest.mark.parametrize("build", [two_central_directories, archive_in_comment,
                                   lambda: GOOD + EVIL], ids=["two-dirs", "comment", "appended"])
def test_zip_confusion_is_live(build: object) -> None:
    """zipfile and torch read different ``data.pkl`` members (or torch none) from each file."""
    assert callable(build)
    data = build()
    by_zipfile, by_torch = _data_pkl_by_zipfile(data), _data_pkl_by_torch(data)
    assert by_zipfile != by_torch
    assert b"system" in by_zipfile + (by_torch or b"")  # one of the readings is the evil one


def test_exotic_globals_are_in_the_audited_corpus() -> None:
    corpus_globals = {f"{p.module}.{p.name}" for p in payloads("/tmp/canary")}
    exotic = {f"{module}.{name}" for module, name, _ in EXOTIC_GLOBALS}
    assert exotic - corpus_globals == {"numpy.lib.npyio.load"}  # numpy.load's home module


def test_cli_exit_codes(tmp_path: Path) -> None:
    unsafe = next(c for c in BYPASS_CASES if c.name == "bypass-global-pydoc.locate")
    ambiguous = next(c for c in BYPASS_CASES if c.name == "bypass-archive-in-comment")
    for folder, case, code, text in ((tmp_path / "u", unsafe, 3, "pydoc.locate"),
                                     (tmp_path / "a", ambiguous, 2, "zip readers disagree")):
        folder.mkdir()
        result = subprocess.run([sys.executable, "-m", "ckptdiff", "inspect",
                                 str(case.build(folder))], capture_output=True, text=True)
        assert result.returncode == code and text in result.stderr, result.stderr
        assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) == 1
