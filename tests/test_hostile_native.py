"""The HDF5 library runs in a forked child with a time limit: a damaged file that makes it loop
forever (found by the mutation fuzzer) or crash ends in a one-line error, and errors and results
come back from the child intact."""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import pytest
from tests.hostile.mutate import TESTDATA, mutants

import ckptdiff.readers as registry
from ckptdiff.errors import CorruptFileError, UnsafeContentError
from ckptdiff.readers.native_sandbox import run_isolated

pytest.importorskip("h5py")
needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def looping_file(path: Path) -> Path:
    """custom.weights.h5 with 11 bytes duplicated at 2162: its global heap moves, and reading
    the /vars name attribute makes HDF5 spin without returning."""
    original = (TESTDATA / "keras" / "custom.weights.h5").read_bytes()
    rng = random.Random("1:keras/custom.weights.h5:custom.weights.h5")
    data = next(d for name, d in mutants(original, 2000, rng) if name == "duplicate@2162+11")
    path.write_bytes(data)
    return path


@needs_fork
def test_a_file_that_makes_hdf5_loop_is_stopped(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CKPTDIFF_NATIVE_TIMEOUT", "3")
    path = looping_file(tmp_path / "loop.weights.h5")
    start = time.monotonic()
    with pytest.raises(CorruptFileError, match="did not finish reading loop.weights.h5 within 3 s"):
        registry.read(path)
    assert time.monotonic() - start < 15


@needs_fork
def test_a_crash_in_the_child_is_a_clear_error() -> None:
    def crash() -> str:
        os.kill(os.getpid(), signal.SIGSEGV)
        return ""

    with pytest.raises(CorruptFileError, match=r"f.h5: the HDF5 library crashed reading f.h5 "
                                               r"\(signal 11\)"):
        run_isolated(crash, "f.h5", "f.h5", local=True)


@needs_fork
def test_errors_and_bugs_come_back_from_the_child(tmp_path: Path) -> None:
    import h5py

    path = tmp_path / "x.weights.h5"
    with h5py.File(path, "w") as handle:
        handle.create_group("vars")
        handle["layers/dense/vars/0"] = h5py.ExternalLink("/etc/passwd", "/x")
    with pytest.raises(UnsafeContentError) as caught:
        registry.read(path)
    assert caught.value.exit_code == 3 and caught.value.globals == ()

    def bug() -> str:
        raise KeyError("oops")

    with pytest.raises(RuntimeError, match="KeyError: 'oops'"):
        run_isolated(bug, "f", "f", local=True)
    assert run_isolated(lambda: "é" * 200_000, "f", "f", local=True) == "é" * 200_000


@needs_fork
@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="the limit needs Linux")
def test_the_child_cannot_take_much_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CKPTDIFF_NATIVE_MEMORY_MB", "64")

    def greedy() -> str:
        return str(len(bytearray(512 * 1024 * 1024)))

    with pytest.raises(CorruptFileError, match="f.h5: reading f.h5 needs more than 64 MiB"):
        run_isolated(greedy, "f.h5", "f.h5", local=True)
    assert run_isolated(lambda: str(len(bytearray(16 * 1024 * 1024))), "f", "f", local=True)


def test_without_isolation_the_task_runs_here() -> None:
    pid = os.getpid()
    assert run_isolated(lambda: str(os.getpid()), "f", "f", local=False) == str(pid)
