"""Hostile and damaged torch checkpoints: refused with a clear error, nothing executed.

Hand-made pickles go through the real loading path (``load_pickle``) and through whole files;
files made by torch use ``pytest.importorskip``.
"""

from __future__ import annotations

import importlib.util
import io
import os
import pickle
import random
import zipfile
from pathlib import Path

import pytest

from ckptdiff.errors import CkptdiffError, CorruptFileError, UnsafeContentError
from ckptdiff.readers import read
from ckptdiff.readers.pickle.allowlist import ALLOWED_GLOBALS
from ckptdiff.readers.pickle.records import DtypeRecord
from ckptdiff.readers.pickle.unpickler import LoadSession, RestrictedUnpickler, load_pickle

PROTO = b"\x80\x02"
STOP = b"."
MARK, TUPLE, TUPLE1, REDUCE, BUILD = b"(", b"t", b"\x85", b"R", b"b"
EMPTY_DICT, EMPTY_TUPLE, SETITEM, BINPERSID = b"}", b")", b"s", b"Q"


def glob(module: str, name: str) -> bytes:
    """GLOBAL opcode."""
    return b"c" + f"{module}\n{name}\n".encode()


def text(value: str) -> bytes:
    """BINUNICODE opcode."""
    raw = value.encode()
    return b"X" + len(raw).to_bytes(4, "little") + raw


def integer(value: int) -> bytes:
    """BININT opcode."""
    return b"J" + value.to_bytes(4, "little", signed=True)


def pickled(*parts: bytes) -> bytes:
    """A protocol-2 pickle of ``parts``."""
    return PROTO + b"".join(parts) + STOP


def storage_pid(key: str, numel: int, storage_class: str = "FloatStorage") -> bytes:
    """A zip-format persistent id for a storage, pushed and resolved."""
    return (MARK + text("storage") + glob("torch", storage_class) + text(key) + text("cpu")
            + integer(numel) + TUPLE + BINPERSID)


def tensor_v2(key: str, numel: int, shape: tuple[int, ...], stride: tuple[int, ...],
              offset: int = 0) -> bytes:
    """``_rebuild_tensor_v2(storage, offset, shape, stride, False, OrderedDict())``."""
    def ints(values: tuple[int, ...]) -> bytes:
        return MARK + b"".join(integer(v) for v in values) + TUPLE

    return (glob("torch._utils", "_rebuild_tensor_v2") + MARK + storage_pid(key, numel)
            + integer(offset) + ints(shape) + ints(stride) + b"\x89"
            + glob("collections", "OrderedDict") + EMPTY_TUPLE + REDUCE + TUPLE + REDUCE)


def load(data: bytes) -> object:
    """Run the zip-format loading path over one pickle."""
    return load_pickle(data, LoadSession(legacy=False), "f.pt", "data.pkl")


def write_zip(path: Path, data_pkl: bytes, storages: dict[str, bytes]) -> Path:
    """A torch-style zip: archive/data.pkl, byteorder, version (torch requires it), data/<key>."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", data_pkl)
        archive.writestr("archive/byteorder", "little")
        archive.writestr("archive/version", "3\n")
        for key, data in storages.items():
            archive.writestr(f"archive/data/{key}", data)
    return path


# --- hand-made pickles -------------------------------------------------------------------------

def test_a_valid_hand_made_pickle_loads() -> None:
    data = pickled(EMPTY_DICT, text("w"), tensor_v2("0", 6, (2, 3), (3, 1)), SETITEM)
    result = load(data)
    assert isinstance(result, dict) and result["w"].shape == (2, 3)


@pytest.mark.parametrize("globals_", [[("os", "system")], [("builtins", "eval"),
                                                           ("subprocess", "Popen")]])
def test_unsafe_globals_are_named_and_never_resolved(globals_: list[tuple[str, str]],
                                                     tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    calls = b"".join(glob(m, n) + text(f"touch {canary}") + TUPLE1 + REDUCE + b"0"
                     for m, n in globals_)
    with pytest.raises(UnsafeContentError) as caught:
        load(pickled(calls, EMPTY_DICT))
    assert set(caught.value.globals) == {f"{m}.{n}" for m, n in globals_}
    assert caught.value.exit_code == 3
    assert all(f"{m}.{n}" in str(caught.value) for m, n in globals_)
    assert not canary.exists()


def test_python2_names_are_mapped_before_the_allow_list() -> None:
    data = pickled(glob("__builtin__", "set"), MARK + integer(1) + TUPLE, TUPLE1, REDUCE)
    assert load(data) == {1}
    with pytest.raises(UnsafeContentError, match="builtins.getattr"):
        load(pickled(glob("__builtin__", "getattr"), b"0", EMPTY_DICT))


def test_the_unpickler_itself_records_unknown_globals_and_continues(tmp_path: Path) -> None:
    # Defence in depth: even without the opcode scan, unknown globals become inert placeholders.
    canary = tmp_path / "canary"
    data = pickled(EMPTY_DICT, text("a"), glob("os", "system"), text(f"touch {canary}"), TUPLE1,
                   REDUCE, SETITEM, text("b"), glob("builtins", "eval"), EMPTY_TUPLE, b"\x81",
                   EMPTY_DICT, BUILD, SETITEM)
    session = LoadSession(legacy=False)
    RestrictedUnpickler(io.BytesIO(data), session).load()
    assert session.unsafe == {"os.system", "builtins.eval"}
    assert not canary.exists()


def test_build_cannot_change_recorders_or_dtypes() -> None:
    recorder = ALLOWED_GLOBALS[("torch._utils", "_rebuild_tensor_v2")]
    dtype = ALLOWED_GLOBALS[("torch", "float32")]
    attacks = [
        pickled(glob("torch._utils", "_rebuild_tensor_v2"), EMPTY_DICT, text("__call__"),
                integer(1), SETITEM, BUILD),
        pickled(glob("torch", "float32"), EMPTY_DICT, EMPTY_DICT, text("name"), text("evil"),
                SETITEM, b"\x86", BUILD),
        pickled(glob("collections", "OrderedDict"), EMPTY_TUPLE, REDUCE, EMPTY_DICT, EMPTY_DICT,
                text("__class__"), integer(1), SETITEM, b"\x86", BUILD),
        pickled(glob("torch", "Size"), EMPTY_TUPLE, b"\x81"),
    ]
    for data in attacks:
        with pytest.raises(CorruptFileError):
            load(data)
    assert ALLOWED_GLOBALS[("torch._utils", "_rebuild_tensor_v2")] is recorder
    assert isinstance(dtype, DtypeRecord) and dtype.name == "float32"


@pytest.mark.parametrize(("body", "message"), [
    (tensor_v2("0", 6, (2, 3), (3,)), "stride has 1 entries"),
    (glob("torch._utils", "_rebuild_tensor_v2") + MARK + text("x") + TUPLE + REDUCE,
     "takes 6 to 7 arguments"),
    (glob("torch", "Size") + MARK + text("a") + TUPLE1 + TUPLE + REDUCE, "torch.Size"),
    (MARK + text("module") + TUPLE + BINPERSID, "persistent id"),
    (glob("torch._utils", "_rebuild_nested_tensor") + EMPTY_TUPLE + REDUCE, "nested tensor"),
])
def test_recorders_check_their_arguments(body: bytes, message: str) -> None:
    with pytest.raises(CkptdiffError, match=message) as caught:
        load(pickled(body))
    assert str(caught.value).startswith("f.pt: ")


def test_deeply_nested_tuples_are_refused_before_they_can_crash_hashing() -> None:
    data = pickled(EMPTY_DICT, EMPTY_TUPLE + TUPLE1 * 200_000, integer(1), SETITEM)
    with pytest.raises(CorruptFileError, match="nest more than"):
        load(data)


def test_memo_indices_beyond_the_pickle_are_refused() -> None:
    data = pickled(EMPTY_DICT, b"r" + (2**32 - 1).to_bytes(4, "little"))
    with pytest.raises(CorruptFileError, match="memo index"):
        load(data)


def test_extension_codes_are_unsafe() -> None:
    with pytest.raises(UnsafeContentError, match="copyreg.extension_code_7"):
        load(pickled(b"\x82\x07"))


def test_pickle_size_is_capped() -> None:
    data = pickled(EMPTY_DICT, text("x" * 5000))
    with pytest.raises(CorruptFileError, match="larger than 1,000 bytes"):
        load_pickle(data, LoadSession(legacy=False), "f.pt", "data.pkl", limit=1000)
    huge = PROTO + b"X" + (2**32 - 1).to_bytes(4, "little") + b"abc"
    with pytest.raises(CorruptFileError):
        load(huge)


def test_tensor_reaching_past_its_storage_is_corrupt(tmp_path: Path) -> None:
    data = pickled(EMPTY_DICT, text("w"), tensor_v2("0", 4, (2, 3), (3, 1)), SETITEM)
    path = write_zip(tmp_path / "w.pt", data, {"0": bytes(16)})
    with pytest.raises(CorruptFileError, match="needs 24 bytes of storage archive/data/0"):
        read(path)


def test_missing_and_short_storage_members(tmp_path: Path) -> None:
    data = pickled(EMPTY_DICT, text("w"), tensor_v2("0", 6, (2, 3), (3, 1)), SETITEM)
    with pytest.raises(CorruptFileError, match="storage archive/data/0 is missing"):
        read(write_zip(tmp_path / "missing.pt", data, {}))
    with pytest.raises(CorruptFileError, match="holds 20 bytes but the checkpoint needs 24"):
        read(write_zip(tmp_path / "short.pt", data, {"0": bytes(20)}))
    assert read(write_zip(tmp_path / "ok.pt", data, {"0": bytes(24)}))["w"].nbytes == 24


# --- files made by torch -----------------------------------------------------------------------

torch_only = pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs torch")


def _state_dict() -> dict[str, object]:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    return {"model": model.state_dict(), "epoch": 3}


class _Evil:
    def __init__(self, canary: Path, command: object = os.system) -> None:
        self.canary = canary
        self.command = command

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (self.command, (f"touch {self.canary}",))


@torch_only
@pytest.mark.parametrize("legacy", [False, True])
def test_malicious_checkpoint_is_refused_and_nothing_runs(legacy: bool, tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    canary = tmp_path / "canary"
    path = tmp_path / "evil.pt"
    obj = {"w": torch.ones(2), "evil": _Evil(canary), "also": _Evil(canary, eval)}
    torch.save(obj, path, _use_new_zipfile_serialization=not legacy)
    with pytest.raises(UnsafeContentError) as caught:
        read(path)
    assert "posix.system" in caught.value.globals or "nt.system" in caught.value.globals
    assert "builtins.eval" in caught.value.globals
    assert caught.value.exit_code == 3
    assert str(caught.value).startswith(f"{path}: refused")
    assert not canary.exists()


@torch_only
def test_a_pickled_whole_module_is_unsafe(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    path = tmp_path / "model.pt"
    torch.save(torch.nn.Linear(2, 2), path)
    with pytest.raises(UnsafeContentError, match="torch.nn.modules.linear.Linear"):
        read(path)


def _cuts(size: int) -> list[int]:
    step = max(1, size // 60)
    return sorted({*range(0, size, step), 1, 8, 29, 30, 31, size - 1, size - 8, size - 22})


@torch_only
@pytest.mark.parametrize("legacy", [False, True])
def test_truncation_at_many_offsets_is_a_clear_error(legacy: bool, tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    source = tmp_path / "full.pt"
    torch.save(_state_dict(), source, _use_new_zipfile_serialization=not legacy)
    data = source.read_bytes()
    victim = tmp_path / "cut.pt"
    for cut in _cuts(len(data)):
        victim.write_bytes(data[:cut])
        with pytest.raises(CkptdiffError) as caught:
            read(victim)
        message = str(caught.value)
        assert message.startswith(str(victim)) and "\n" not in message, (cut, message)


@torch_only
def test_legacy_truncation_inside_the_storages_names_both_sizes(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    path = tmp_path / "legacy.pt"
    torch.save({"w": torch.zeros(1000)}, path, _use_new_zipfile_serialization=False)
    full = path.stat().st_size
    path.write_bytes(path.read_bytes()[:full - 100])
    with pytest.raises(CorruptFileError) as caught:
        read(path)
    assert str(caught.value) == (f"{path}: file ends at byte {full - 100:,} but the storages "
                                 f"need {full:,} bytes: truncated download?")


def _rezip_with(source: Path, target: Path, data_pkl: bytes) -> Path:
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            payload = data_pkl if info.filename.endswith("/data.pkl") else old.read(info)
            new.writestr(info.filename, payload)
    return target


@torch_only
def test_mutated_pickles_never_escape_as_other_exceptions(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    source = tmp_path / "src.pt"
    torch.save(_state_dict(), source)
    legacy = tmp_path / "legacy.pt"
    torch.save(_state_dict(), legacy, _use_new_zipfile_serialization=False)
    data_pkl = next(zipfile.ZipFile(source).read(n) for n in zipfile.ZipFile(source).namelist()
                    if n.endswith("data.pkl"))
    legacy_bytes = legacy.read_bytes()
    rng = random.Random(1234)
    outcomes: dict[str, int] = {}
    for attempt in range(300):
        is_legacy = attempt % 2 == 1
        blob = bytearray(legacy_bytes if is_legacy else data_pkl)
        for _ in range(rng.randint(1, 4)):
            where = rng.randrange(len(blob))
            action = rng.randrange(3)
            if action == 0:
                blob[where] = rng.randrange(256)
            elif action == 1:
                del blob[where:where + rng.randint(1, 8)]
            else:
                blob[where:where] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        target = tmp_path / f"m{attempt}.pt"
        if is_legacy:
            target.write_bytes(bytes(blob))
        else:
            _rezip_with(source, target, bytes(blob))
        try:
            read(target)
            outcomes["read"] = outcomes.get("read", 0) + 1
        except CkptdiffError as exc:
            assert "\n" not in str(exc)
            outcomes[type(exc).__name__] = outcomes.get(type(exc).__name__, 0) + 1
    assert outcomes.get("CorruptFileError", 0) > 50


def test_mutated_hand_made_and_stdlib_pickles_fail_cleanly() -> None:
    samples = [
        pickled(EMPTY_DICT, text("w"), tensor_v2("0", 6, (2, 3), (3, 1)), SETITEM),
        pickle.dumps({"a": [1, 2.5, (3, "x"), b"by", {1, 2}, frozenset([3])]}, protocol=4),
        pickle.dumps([(1,), "x" * 300, 2**100, None, True], protocol=5),
        pickle.dumps({"k": ("a", "b"), "n": [1.5]}, protocol=0),
        pickle.dumps({"k": [1, 2]}, protocol=1),
    ]
    rng = random.Random(99)
    for _ in range(1500):
        blob = bytearray(rng.choice(samples))
        for _ in range(rng.randint(1, 6)):
            where = rng.randrange(len(blob))
            action = rng.randrange(4)
            if action == 0:
                blob[where] = rng.randrange(256)
            elif action == 1:
                del blob[where:where + rng.randint(1, 8)]
            elif action == 2:
                blob[where:where] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
            else:
                donor = rng.choice(samples)
                blob[where:where] = donor[rng.randrange(len(donor)):][:rng.randint(1, 40)]
        try:
            load_pickle(bytes(blob), LoadSession(legacy=rng.random() < 0.5), "f.pt", "data.pkl")
        except CkptdiffError as exc:
            assert str(exc).startswith("f.pt: ") and "\n" not in str(exc)


def test_plain_pickles_are_not_torch_checkpoints(tmp_path: Path) -> None:
    path = tmp_path / "plain.pt"
    path.write_bytes(pickle.dumps({"a": 1}, protocol=2))
    with pytest.raises(CkptdiffError, match="torch-zip or torch-legacy"):
        read(path)
