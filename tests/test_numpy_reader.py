"""The NumPy readers against numpy itself: ``np.save``/``np.savez`` make the files, ``np.load``
(memory-mapped for ``.npy``) is the oracle for keys, shapes, dtypes, sizes and memory order; what
numpy loads only through pickle is refused as unsafe (exit 3)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

import ckptdiff.readers as registry
from ckptdiff.dtypes import NUMPY_DTYPES
from ckptdiff.errors import CkptdiffError, CorruptFileError, UnsafeContentError

np = pytest.importorskip("numpy")

FIXTURES = Path(__file__).resolve().parent.parent / "testdata" / "readers" / "numpy"


def _vocabulary(array: object) -> str:
    dtype = array.dtype  # type: ignore[attr-defined]
    if dtype.kind in "US":
        return "string"
    return NUMPY_DTYPES.get(dtype.name, "other") if dtype.fields is None else "other"


def _assert_same(info: object, array: object) -> None:
    assert info.shape == array.shape  # type: ignore[attr-defined]
    assert info.dtype == _vocabulary(array)  # type: ignore[attr-defined]
    assert info.nbytes == array.nbytes  # type: ignore[attr-defined]


def _arrays() -> dict[str, object]:
    return {
        "w": np.arange(20, dtype=np.float32).reshape(4, 5),
        "big_endian": np.arange(6, dtype=">i4"),
        "f": np.asfortranarray(np.ones((3, 2, 2), dtype=np.float64)),
        "c": np.zeros(3, dtype=np.complex128),
        "s": np.array([b"ab", b"c"]),
        "u": np.array(["long text", "x"]),
        "t": np.array(["2024-01-01"], dtype="datetime64[ns]"),
        "half": np.float16(1.5) * np.ones((2, 2), np.float16),
        "scalar": np.array(3.0),
        "empty": np.zeros((2, 0)),
        "void": np.zeros(2, dtype="V3"),
    }


@pytest.mark.parametrize("name", sorted(_arrays()))
def test_npy_manifest_equals_what_np_load_reports(name: str, tmp_path: Path) -> None:
    path = tmp_path / f"{name}.npy"
    np.save(path, _arrays()[name])
    array = np.load(path, mmap_mode="r")
    manifest = registry.read(path)
    assert manifest.format == "numpy-npy" and manifest.keys() == [name]
    _assert_same(manifest[name], array)
    facts = manifest.metadata["numpy"]["arrays"][name]
    assert facts["fortran_order"] == (array.ndim > 1 and array.flags.f_contiguous
                                      and not array.flags.c_contiguous)
    assert manifest.metadata["bytes_read"] < 256


@pytest.mark.parametrize("compressed", [False, True])
def test_npz_manifest_equals_what_np_load_reports(compressed: bool, tmp_path: Path) -> None:
    path = tmp_path / "a.npz"
    (np.savez_compressed if compressed else np.savez)(path, **_arrays())
    manifest = registry.read(path)
    with np.load(path) as loaded:
        assert manifest.keys() == loaded.files
        for key in loaded.files:
            _assert_same(manifest[key], loaded[key])


@pytest.mark.parametrize("fixture", ["weights.npy", "fortran.npy", "arrays.npz",
                                     "compressed.npz"])
def test_committed_fixtures_match_numpy(fixture: str) -> None:
    path = FIXTURES / fixture
    manifest = registry.read(path)
    if fixture.endswith(".npy"):
        _assert_same(manifest.tensors[0], np.load(path, mmap_mode="r"))
        return
    with np.load(path) as loaded:
        assert manifest.keys() == loaded.files
        for key in loaded.files:
            _assert_same(manifest[key], loaded[key])


@pytest.mark.parametrize("version", [(2, 0), (3, 0)])
def test_format_versions_2_and_3(version: tuple[int, int], tmp_path: Path) -> None:
    path = tmp_path / "v.npy"
    array = np.zeros(3, dtype=[("naïve", "<f4")]) if version == (3, 0) else np.ones((2, 2))
    with open(path, "wb") as handle:
        np.lib.format.write_array(handle, array, version=version)
    info = registry.read(path).tensors[0]
    _assert_same(info, np.load(path, mmap_mode="r"))
    assert registry.read(path).metadata["numpy"]["arrays"]["v"]["version"] == f"{version[0]}.0"


def test_object_arrays_are_refused_as_unsafe(tmp_path: Path) -> None:
    np.save(tmp_path / "o.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(UnsafeContentError, match="unpickling") as caught:
        registry.read(tmp_path / "o.npy")
    assert caught.value.exit_code == 3
    np.savez(tmp_path / "o.npz", fine=np.zeros(2), bad=np.array([1, "x"], dtype=object))
    with pytest.raises(UnsafeContentError):
        registry.read(tmp_path / "o.npz")
    np.save(tmp_path / "s.npy", np.zeros(2, dtype=[("a", "<f4"), ("b", "O")]), allow_pickle=True)
    with pytest.raises(UnsafeContentError):
        registry.read(tmp_path / "s.npy")


def _npy(header: str, data: bytes = b"") -> bytes:
    raw = header.encode("latin1")
    return b"\x93NUMPY\x01\x00" + len(raw).to_bytes(2, "little") + raw + data


@pytest.mark.parametrize(("blob", "match"), [
    (_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", bytes(15)), "truncated"),
    (_npy("{'descr': '<f4', 'fortran_order': False}"), "exactly descr"),
    (_npy("{'descr': '<f4', 'fortran_order': 0, 'shape': (1,)}", bytes(4)), "fortran_order"),
    (_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}"), "non-negative"),
    (_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (True,)}"), "non-negative"),
    (_npy(f"{{'descr': '<f4', 'fortran_order': False, 'shape': (0, {2**70})}}"), "2\\*\\*63"),
    (_npy("{'descr': 'zz', 'fortran_order': False, 'shape': ()}"), "not a dtype"),
    (_npy("__import__('os').system('true')"), "not a Python dict literal"),
    (_npy("(" * 5000 + ")" * 5000), "not a Python dict literal"),
    (b"\x93NUMPY\x02\x00" + (10**6).to_bytes(4, "little"), "numpy's limit"),
    (b"\x93NUMPY\x04\x00" + bytes(8), "unknown .npy format version 4.0"),
])
def test_malformed_headers_are_one_line(blob: bytes, match: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.npy"
    path.write_bytes(blob)
    with pytest.raises(CkptdiffError, match=match) as caught:
        registry.read(path)
    assert "\n" not in str(caught.value) and str(caught.value).startswith(str(path))
    assert caught.value.exit_code == 2


def test_npz_members_that_are_not_arrays_are_listed(tmp_path: Path) -> None:
    path = tmp_path / "mixed.npz"
    np.savez(path, a=np.zeros(2))
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("notes.txt", "hello")
    manifest = registry.read(path)
    assert manifest.keys() == ["a"] and manifest.metadata["numpy"]["other_members"] == ["notes.txt"]


def test_npz_member_shorter_than_its_array_is_refused(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.zeros(100, np.float32))
    path = tmp_path / "short.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.npy", buffer.getvalue()[:-4])
    with pytest.raises(CorruptFileError, match="needs 400 bytes"):
        registry.read(path)
