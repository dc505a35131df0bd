"""The single-file safetensors reader against the safetensors library as the oracle."""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path
from typing import Any

import pytest

import ckptdiff.readers as registry
from ckptdiff.dtypes import (
    SAFETENSORS_DTYPES,
    SAFETENSORS_OTHER_BITS,
    TORCH_DTYPES,
    TORCH_OTHER_BITS,
)
from ckptdiff.errors import CkptdiffError, CorruptFileError, UsageError
from ckptdiff.manifest import Manifest
from ckptdiff.readers.safetensors.header import element_bits
from ckptdiff.readers.safetensors.index import ShardedSafetensorsReader
from ckptdiff.readers.safetensors.single import SafetensorsReader

# The library's Dtype enum (safetensors/src/tensor.rs), in its order.
LIBRARY_CODES = (
    "BOOL", "F4", "F6_E2M3", "F6_E3M2", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0",
    "F8_E4M3FNUZ", "F8_E5M2FNUZ", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "C64",
    "F64", "I64", "U64",
)


def write_raw(path: Path, header: bytes | dict[str, Any], data: bytes = b"") -> Path:
    """Write a safetensors file from a header (JSON bytes or a dict) and a data section."""
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)
    return path


def library_view(path: Path) -> dict[str, Any]:
    """What the safetensors library says about a file, without loading any tensor."""
    safetensors = pytest.importorskip("safetensors")
    with safetensors.safe_open(str(path), framework="np") as handle:
        return {
            "tensors": {
                key: (handle.get_slice(key).get_dtype(), handle.get_slice(key).get_shape())
                for key in handle.keys()  # noqa: SIM118 - safe_open is not a dict
            },
            "metadata": handle.metadata() or {},
        }


def ours(manifest: Manifest, codes: dict[str, str]) -> dict[str, tuple[str, list[int]]]:
    """Our manifest in the library's terms (``codes`` maps keys back to header dtype codes)."""
    return {t.key: (codes[t.key], list(t.shape)) for t in manifest}


def header_codes(path: Path) -> dict[str, str]:
    """The dtype code of every tensor, straight from the header JSON."""
    raw = path.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + length])
    return {k: v["dtype"] for k, v in header.items() if k != "__metadata__"}


def test_library_dtype_list_matches_our_tables(tmp_path: Path) -> None:
    safetensors = pytest.importorskip("safetensors")
    assert set(LIBRARY_CODES) == set(SAFETENSORS_DTYPES) | set(SAFETENSORS_OTHER_BITS)
    # The library names every code it knows when refusing an unknown one: catch new ones.
    bad = write_raw(tmp_path / "x.safetensors",
                    {"t": {"dtype": "NOPE", "shape": [1], "data_offsets": [0, 1]}}, b"x")
    with pytest.raises(Exception) as refused:
        safetensors.safe_open(str(bad), framework="np")
    found = re.search(r"expected one of (.*?) at line", str(refused.value))
    if found is None:
        pytest.skip(f"the library's message changed: {refused.value}")
    assert set(re.findall(r"`(\w+)`", found.group(1))) == set(LIBRARY_CODES)


@pytest.mark.parametrize("code", LIBRARY_CODES)
def test_every_library_dtype_matches_the_library(code: str, tmp_path: Path) -> None:
    bits = element_bits(code)
    assert bits is not None
    shapes = {"scalar": [], "vector": [8], "matrix": [2, 4], "empty": [0, 3], "wide": [1, 0, 5]}
    header: dict[str, Any] = {"__metadata__": {"format": "pt", "dtype": code}}
    offset = 0
    for name, shape in shapes.items():
        count = 1
        for dim in shape:
            count *= dim
        size = count * bits // 8 if (count * bits) % 8 == 0 else None
        if size is None:  # a scalar of a sub-byte dtype cannot be stored
            continue
        header[name] = {"dtype": code, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    path = write_raw(tmp_path / "all.safetensors", header, bytes(offset))
    manifest = SafetensorsReader().read(path)
    expected = library_view(path)
    assert ours(manifest, header_codes(path)) == expected["tensors"]
    assert manifest.metadata["safetensors"] == expected["metadata"]
    vocabulary = SAFETENSORS_DTYPES.get(code, "other")
    assert {t.dtype for t in manifest} == {vocabulary}
    for tensor in manifest:
        begin, end = header[tensor.key]["data_offsets"]
        assert tensor.nbytes == end - begin


# torch dtypes that safetensors.torch can store (names present in this torch version are used).
TORCH_STORABLE = (
    "float64", "float32", "float16", "bfloat16", "float8_e4m3fn", "float8_e5m2",
    "float8_e4m3fnuz", "float8_e5m2fnuz", "float8_e8m0fnu", "float4_e2m1fn_x2",
    "int64", "int32", "int16", "int8", "uint64", "uint32", "uint16", "uint8", "bool", "complex64",
)


def test_torch_made_file_matches_library_and_torch_dtypes(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    torch_st = pytest.importorskip("safetensors.torch")
    tensors: dict[str, Any] = {}
    for name in TORCH_STORABLE:
        dtype = getattr(torch, name, None)
        if dtype is None:
            continue
        bytes_2x4 = torch.arange(8, dtype=torch.uint8).reshape(2, 4)
        tensors[f"matrix.{name}"] = bytes_2x4.view(dtype) if dtype.itemsize == 1 \
            else torch.zeros(2, 4, dtype=dtype)
        tensors[f"empty.{name}"] = torch.zeros(0, 3, dtype=torch.uint8).view(dtype) \
            if dtype.itemsize == 1 else torch.zeros(0, 3, dtype=dtype)
        if name != "float4_e2m1fn_x2":  # one torch byte is two F4 elements: no scalar
            tensors[f"scalar.{name}"] = tensors[f"matrix.{name}"][0, 0].clone()
    assert len(tensors) >= 3 * 16
    path = tmp_path / "torch.safetensors"
    torch_st.save_file(tensors, str(path), metadata={"format": "pt", "epoch": "3"})
    manifest = SafetensorsReader().read(path)
    expected = library_view(path)
    assert ours(manifest, header_codes(path)) == expected["tensors"]
    assert manifest.metadata["safetensors"] == {"epoch": "3", "format": "pt"}
    for key, tensor in tensors.items():
        name = str(tensor.dtype).removeprefix("torch.")
        info = manifest[key]
        assert name in TORCH_DTYPES or name in TORCH_OTHER_BITS, name
        assert info.dtype == TORCH_DTYPES.get(name, "other"), key
        assert info.nbytes == tensor.numel() * tensor.element_size(), key
        if name != "float4_e2m1fn_x2":  # safetensors counts F4 elements, two per torch byte
            assert list(info.shape) == list(tensor.shape), key


def test_manifest_fields_scalars_empty_and_buffers(tmp_path: Path) -> None:
    header = {
        "__metadata__": {"b": "2", "a": "1"},
        "bn.running_var": {"dtype": "F32", "shape": [3], "data_offsets": [8, 20]},
        "bn.num_batches_tracked": {"dtype": "I64", "shape": [], "data_offsets": [0, 8]},
        "fc.weight": {"dtype": "BF16", "shape": [0, 4], "data_offsets": [20, 20]},
    }
    path = write_raw(tmp_path / "m.safetensors", header, bytes(20))
    manifest = SafetensorsReader().read(path)
    assert manifest.keys() == ["bn.num_batches_tracked", "bn.running_var", "fc.weight"]
    first = manifest["bn.num_batches_tracked"]
    assert (first.shape, first.dtype, first.device, first.nbytes) == ((), "int64", None, 8)
    assert (first.storage, first.aliases, first.kind, first.trainable) == (
        "m.safetensors", (), "buffer", None)
    assert first.storage_offset is None and first.stride is None
    assert manifest["fc.weight"].kind == "parameter"
    assert manifest["fc.weight"].nbytes == 0
    assert list(manifest.metadata["safetensors"]) == ["a", "b"]  # sorted, deterministic
    assert manifest.format == "safetensors" and manifest.container_key is None
    assert Manifest.from_json(manifest.to_json()) == manifest


def test_reads_only_the_header(tmp_path: Path) -> None:
    size = 1 << 20
    header = {"big": {"dtype": "U8", "shape": [size], "data_offsets": [0, size]}}
    path = write_raw(tmp_path / "big.safetensors", header, bytes(size))
    (length,) = struct.unpack("<Q", path.read_bytes()[:8])
    manifest = registry.read(path)
    assert manifest.metadata["bytes_read"] == 8 + length
    assert manifest.metadata["bytes_read"] < 200


def test_identical_empty_offsets_are_not_aliases(tmp_path: Path) -> None:
    # Two empty tensors at one offset are valid (the library agrees) but share no bytes.
    header = {
        "a": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]},
        "b": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]},
    }
    path = write_raw(tmp_path / "e.safetensors", header)
    manifest = SafetensorsReader().read(path)
    assert set(library_view(path)["tensors"]) == {"a", "b"}
    assert manifest.keys() == ["a", "b"] and all(t.aliases == () for t in manifest)


def test_bin_named_file_is_sniffed_by_content(tmp_path: Path) -> None:
    header = {"w": {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]}}
    path = write_raw(tmp_path / "pytorch_model.bin", header, bytes(4))
    manifest = registry.read(path)
    assert manifest.format == "safetensors" and manifest["w"].storage == "pytorch_model.bin"


def test_sniff_refuses_other_formats(tmp_path: Path) -> None:
    reader = SafetensorsReader()
    snapshot = Manifest("x", "safetensors", ()).to_json().encode()
    assert not reader.sniff(snapshot, tmp_path / "x.json")
    assert not reader.sniff(b"PK\x03\x04" + bytes(60), tmp_path / "m.pth")  # torch zip
    assert not reader.sniff(b"\x80\x02\x8a\x0alZ\xfc\x9cF\xf9 j\xa8P\x19." + bytes(40),
                            tmp_path / "m.pt")  # legacy torch pickle
    assert not reader.sniff(b"\x89HDF\r\n\x1a\n" + bytes(60), tmp_path / "m.h5")
    assert not reader.sniff(struct.pack("<Q", 3) + b"[1]", tmp_path / "x")  # not an object
    assert not reader.sniff(struct.pack("<Q", 10) + b"{}xxxxxxxx", tmp_path / "x")
    assert reader.sniff(struct.pack("<Q", 4) + b"  {}", tmp_path / "x")
    assert reader.sniff(struct.pack("<Q", 5000) + b"{" + bytes(100), tmp_path / "x")  # partial


def test_torch_files_are_not_claimed(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    state = {"w": torch.zeros(3, 3)}
    torch.save(state, tmp_path / "new.pth")
    torch.save(state, tmp_path / "old.pth", _use_new_zipfile_serialization=False)
    for name in ("new.pth", "old.pth"):
        path = tmp_path / name
        head = path.read_bytes()[:4096]
        assert not SafetensorsReader().sniff(head, path)
        assert not ShardedSafetensorsReader().sniff(head, path)


def test_directory_with_one_file_reads_as_that_file(tmp_path: Path) -> None:
    header = {"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}
    write_raw(tmp_path / "model.safetensors", header, bytes(4))
    (tmp_path / "config.json").write_text("{}")
    manifest = registry.read(tmp_path)
    assert manifest.format == "safetensors" and manifest.path == str(tmp_path)
    assert manifest["w"].storage == "model.safetensors"


def test_container_key_is_a_usage_error(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "m.safetensors", {})
    with pytest.raises(UsageError, match="no container"):
        registry.read(path, "state_dict")


@pytest.mark.parametrize("name", ["model.safetensors", "pytorch_model.bin"])
def test_lfs_pointer_is_explained(name: str, tmp_path: Path) -> None:
    pointer = (
        "version https://git-lfs.github.com/spec/v1\n"
        "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
        "size 440473133\n"
    )
    path = tmp_path / name
    path.write_text(pointer)
    with pytest.raises(CorruptFileError, match="git lfs pull"):
        registry.read(path)
    # Reached directly (a folder of one file, or a shard), the reader says the same.
    with pytest.raises(CorruptFileError, match="git lfs pull"):
        SafetensorsReader().read(path)


def test_io_error_mid_read_is_a_ckptdiff_error(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    import ckptdiff.readers.safetensors.header as header_module

    class FailingFile(header_module.CountingFile):
        def read(self, size: int | None = -1) -> bytes:
            raise OSError(errno.EIO, "Input/output error")

    path = write_raw(tmp_path / "m.safetensors", {})
    monkeypatch.setattr(header_module, "CountingFile", FailingFile)
    with pytest.raises(CkptdiffError, match=r"m.safetensors: cannot read: Input/output error"):
        SafetensorsReader().read(path)
