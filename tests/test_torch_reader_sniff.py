"""Which files the torch readers claim: torch zips and legacy pickles only, by content."""

from __future__ import annotations

import json
import pickle
import zipfile
from pathlib import Path

import pytest

from ckptdiff.errors import CorruptFileError
from ckptdiff.readers import find_reader, read
from ckptdiff.readers.torch.legacy import TorchLegacyReader
from ckptdiff.readers.torch.zip import TorchZipReader

ZIP = TorchZipReader()
LEGACY = TorchLegacyReader()


def claims(path: Path) -> list[str]:
    head = path.read_bytes()[:4096]
    return [r.name for r in (ZIP, LEGACY) if r.sniff(head, path)]


def test_keras_and_plain_zips_are_not_claimed(tmp_path: Path) -> None:
    keras = tmp_path / "model.keras"
    with zipfile.ZipFile(keras, "w") as archive:
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.0"}))
        archive.writestr("config.json", "{}")
        archive.writestr("model.weights.h5", b"\x89HDF\r\n\x1a\n")
    plain = tmp_path / "weights.pt"
    with zipfile.ZipFile(plain, "w") as archive:
        archive.writestr("data.pkl", b"")  # no root folder: not torch's layout
        archive.writestr("a/b/data.pkl", b"")
    assert claims(keras) == [] and claims(plain) == []


def test_safetensors_and_plain_pickles_are_not_claimed(tmp_path: Path) -> None:
    header = json.dumps({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
    safetensors = tmp_path / "model.bin"
    safetensors.write_bytes(len(header).to_bytes(8, "little") + header + bytes(4))
    plain = tmp_path / "plain.pt"
    plain.write_bytes(pickle.dumps({"a": 1}, protocol=2))
    number = tmp_path / "number.pt"
    number.write_bytes(pickle.dumps(12345, protocol=2))
    assert claims(safetensors) == [] and claims(plain) == [] and claims(number) == []


def test_root_folder_is_found_wherever_data_pkl_is(tmp_path: Path) -> None:
    path = tmp_path / "odd.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("my_model/version", "3")
        archive.writestr("my_model/data.pkl", pickle.dumps({}, protocol=2))
    assert claims(path) == ["torch-zip"]
    assert read(path).metadata["containers"] == []


def test_truncated_zip_is_still_claimed_and_explained(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    path = tmp_path / "cut.pt"
    torch.save({"w": torch.zeros(100)}, path)
    path.write_bytes(path.read_bytes()[:200])
    assert claims(path) == ["torch-zip"]
    with pytest.raises(CorruptFileError, match="central directory is missing or damaged"):
        read(path)


def test_torchscript_archives_go_to_the_torchscript_reader(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    path = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), path)
    assert claims(path) == []
    assert find_reader(path).name == "torchscript"
    assert [t.key for t in read(path).tensors] == ["weight", "bias"]


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_legacy_files_of_every_pickle_protocol(protocol: int, tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    path = tmp_path / "legacy.pt"
    torch.save({"w": torch.ones(2, 3)}, path, _use_new_zipfile_serialization=False,
               pickle_protocol=protocol)
    assert claims(path) == ["torch-legacy"]
    manifest = read(path)
    assert manifest.format == "torch-legacy" and manifest["w"].shape == (2, 3)
    assert manifest["w"].storage is not None and manifest["w"].storage.startswith("storage/")


@pytest.mark.parametrize("suffix", [".pth", ".pt", ".bin", ".ckpt", ".weights"])
def test_content_decides_not_the_extension(suffix: str, tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    path = tmp_path / f"model{suffix}"
    torch.save({"w": torch.ones(1)}, path)
    assert find_reader(path).name == "torch-zip"
