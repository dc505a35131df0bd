"""The sharded safetensors reader: transformers-made shards, folders, and broken indexes."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any

import pytest

import ckptdiff.readers as registry
import ckptdiff.readers.shard_index as index_module
from ckptdiff.errors import CkptdiffError, CorruptFileError
from ckptdiff.manifest import Manifest
from ckptdiff.readers.safetensors.index import ShardedSafetensorsReader

INDEX = "model.safetensors.index.json"


def write_raw(path: Path, header: dict[str, Any], data: bytes = b"") -> Path:
    """Write a safetensors file from a header dict and a data section."""
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)
    return path


def write_shard(path: Path, *keys: str) -> Path:
    """A shard holding one float32 scalar per key."""
    header = {k: {"dtype": "F32", "shape": [], "data_offsets": [4 * i, 4 * i + 4]}
              for i, k in enumerate(keys)}
    return write_raw(path, header, bytes(4 * len(keys)))


def write_index(folder: Path, weight_map: dict[str, str], **extra: Any) -> Path:
    """An index in transformers' layout."""
    path = folder / INDEX
    path.write_text(json.dumps({"metadata": {"total_size": 4 * len(weight_map)},
                                "weight_map": weight_map, **extra}))
    return path


@pytest.fixture()
def two_shards(tmp_path: Path) -> Path:
    """A consistent two-shard checkpoint: a, b in shard 1; c in shard 2."""
    write_shard(tmp_path / "s1.safetensors", "a", "b")
    write_shard(tmp_path / "s2.safetensors", "c")
    return write_index(tmp_path, {"c": "s2.safetensors", "a": "s1.safetensors",
                                  "b": "s1.safetensors"})


def _bert_dir(tmp_path_factory: pytest.TempPathFactory, model_class: str) -> tuple[Path, Any]:
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("torch")
    config = transformers.BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=37, vocab_size=99)
    model = getattr(transformers, model_class)(config)
    folder = tmp_path_factory.mktemp(model_class)
    model.save_pretrained(folder, max_shard_size="50KB")
    return folder, model


@pytest.fixture(scope="session")
def bert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """A tiny BertModel saved by transformers in several safetensors shards."""
    return _bert_dir(tmp_path_factory, "BertModel")


def test_transformers_shards_match_the_library(bert: tuple[Path, Any]) -> None:
    safetensors = pytest.importorskip("safetensors")
    folder, model = bert
    index = json.loads((folder / INDEX).read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) >= 2
    expected: list[tuple[str, str, list[int], str]] = []
    bytes_read = (folder / INDEX).stat().st_size
    for shard in shards:
        with safetensors.safe_open(str(folder / shard), framework="np") as handle:
            for key in handle.keys():  # noqa: SIM118 - safe_open is not a dict
                view = handle.get_slice(key)
                expected.append((key, view.get_dtype(), view.get_shape(), shard))
        bytes_read += 8 + struct.unpack("<Q", (folder / shard).read_bytes()[:8])[0]
    manifest = registry.read(folder / INDEX)
    codes = {"F32": "float32", "I64": "int64"}
    assert sorted((t.key, t.dtype, list(t.shape), t.storage) for t in manifest) == sorted(
        (k, codes[d], s, f) for k, d, s, f in expected)
    # Shard order, then data-offset order within each shard.
    assert [t.storage for t in manifest] == sorted(t.storage or "" for t in manifest)
    assert manifest.format == "safetensors-sharded"
    assert manifest.metadata["index"] == index["metadata"]
    assert manifest.metadata["shards"] == [
        {"file": s, "tensors": sum(1 for e in expected if e[3] == s),
         "safetensors": {"format": "pt"}} for s in shards]
    assert manifest.metadata["bytes_read"] == bytes_read
    # The model's own view: every state_dict entry, same shapes.
    state = model.state_dict()
    assert set(manifest.keys()) == set(state)
    assert all(list(manifest[k].shape) == list(v.shape) for k, v in state.items())
    assert all(t.device is None and t.aliases == () for t in manifest)


def test_folder_and_index_read_alike(bert: tuple[Path, Any]) -> None:
    folder, _ = bert
    by_folder = registry.read(folder)
    by_index = registry.read(folder / INDEX)
    assert by_folder.path == str(folder) and by_index.path == str(folder / INDEX)
    assert by_folder.tensors == by_index.tensors and by_folder.metadata == by_index.metadata
    assert Manifest.from_json(by_folder.to_json()) == by_folder


def test_tied_weights_dropped_by_transformers_are_absent(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    folder, model = _bert_dir(tmp_path_factory, "BertForMaskedLM")
    manifest = registry.read(folder)
    dropped = set(model.state_dict()) - set(manifest.keys())
    # save_pretrained leaves out the decoder, which shares storage with the embeddings; the
    # files record no tie, so nothing in the manifest can say so (aliases stay empty).
    assert "cls.predictions.decoder.weight" in dropped
    assert dropped <= set(model._tied_weights_keys)
    assert "bert.embeddings.word_embeddings.weight" in manifest
    assert all(t.aliases == () for t in manifest)


def test_sniff_claims_only_safetensors_indexes(tmp_path: Path) -> None:
    reader = ShardedSafetensorsReader()
    torch_index = b'{"metadata": {}, "weight_map": {"w": "pytorch_model-00001-of-00002.bin"}}'
    assert not reader.sniff(torch_index, tmp_path / "pytorch_model.bin.index.json")
    st_index = b'{"metadata": {}, "weight_map": {"w": "model-00001-of-00002.safetensors"}}'
    assert reader.sniff(st_index, tmp_path / "weights.json")
    assert reader.sniff(b'{"weight_map": {}}', tmp_path / INDEX)
    snapshot = Manifest("x", "safetensors-sharded", (), metadata={"weight_map": 1})
    assert not reader.sniff(snapshot.to_json().encode(), tmp_path / INDEX)
    assert not reader.sniff(b"", tmp_path / "missing")


def test_folder_with_several_files_and_no_index(tmp_path: Path) -> None:
    write_shard(tmp_path / "a.safetensors", "a")
    write_shard(tmp_path / "b.safetensors", "b")
    with pytest.raises(CkptdiffError, match=r"holds 2 \.safetensors files but no .*index"):
        registry.read(tmp_path)


def test_folder_with_several_indexes(two_shards: Path) -> None:
    (two_shards.parent / "other.safetensors.index.json").write_text(two_shards.read_text())
    with pytest.raises(CkptdiffError, match="holds 2 index files"):
        registry.read(two_shards.parent)


def test_index_wins_over_single_file(tmp_path: Path) -> None:
    write_shard(tmp_path / "model.safetensors", "a")
    write_index(tmp_path, {"a": "model.safetensors"})
    claimed = [e.reader.name for e in registry.registered() if e.reader.sniff(b"", tmp_path)]
    assert claimed == ["safetensors-sharded"]
    assert registry.read(tmp_path).keys() == ["a"]


def test_missing_shard_is_named(two_shards: Path) -> None:
    (two_shards.parent / "s2.safetensors").unlink()
    with pytest.raises(CorruptFileError, match=r'shard "s2.safetensors" .* is missing'):
        registry.read(two_shards)


@pytest.mark.parametrize("name", ["../s1.safetensors", "/etc/passwd", "sub/../../x.safetensors",
                                  "C:\\x.safetensors", "..\\x.safetensors", ""])
def test_shard_names_leaving_the_folder_are_refused(name: str, two_shards: Path) -> None:
    write_index(two_shards.parent, {"a": "s1.safetensors", "b": "s1.safetensors", "c": name})
    with pytest.raises(CorruptFileError, match="refused shard name") as caught:
        registry.read(two_shards)
    assert str(caught.value).startswith(str(two_shards))


def test_shard_in_a_subfolder_is_fine(two_shards: Path) -> None:
    (two_shards.parent / "sub").mkdir()
    (two_shards.parent / "s2.safetensors").rename(two_shards.parent / "sub" / "s2.safetensors")
    write_index(two_shards.parent, {"a": "s1.safetensors", "b": "s1.safetensors",
                                    "c": "sub/s2.safetensors"})
    assert registry.read(two_shards)["c"].storage == "sub/s2.safetensors"


def test_symlink_out_of_the_folder_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    write_shard(outside / "secret.safetensors", "c")
    folder = tmp_path / "ckpt"
    folder.mkdir()
    write_shard(folder / "s1.safetensors", "a")
    os.symlink(outside / "secret.safetensors", folder / "s2.safetensors")
    write_index(folder, {"a": "s1.safetensors", "c": "s2.safetensors"})
    with pytest.raises(CorruptFileError, match="outside the index's folder"):
        registry.read(folder)


def test_symlink_inside_the_folder_is_fine(two_shards: Path) -> None:
    folder = two_shards.parent
    (folder / "s2.safetensors").rename(folder / "real.safetensors")
    os.symlink("real.safetensors", folder / "s2.safetensors")
    assert registry.read(two_shards)["c"].storage == "s2.safetensors"


@pytest.mark.parametrize("kind", ["loop", "folder"])
def test_shard_that_is_no_file(kind: str, two_shards: Path) -> None:
    shard = two_shards.parent / "s2.safetensors"
    shard.unlink()
    if kind == "loop":
        os.symlink("s2.safetensors", shard)
    else:
        shard.mkdir()
    with pytest.raises(CorruptFileError, match=r'shard "s2.safetensors" .* is missing'):
        registry.read(two_shards.parent)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads anything")
def test_unreadable_shard(two_shards: Path) -> None:
    (two_shards.parent / "s2.safetensors").chmod(0)
    with pytest.raises(CkptdiffError, match="cannot read"):
        registry.read(two_shards)


def test_hugging_face_cache_layout(tmp_path: Path) -> None:
    # models--org--name/snapshots/<rev>/<file> are symlinks into models--org--name/blobs/.
    repo = tmp_path / "models--org--tiny"
    blobs, snapshot = repo / "blobs", repo / "snapshots" / "0123abc"
    blobs.mkdir(parents=True)
    snapshot.mkdir(parents=True)
    write_shard(blobs / "sha-1", "a")
    write_shard(blobs / "sha-2", "b")
    write_index(blobs, {"a": "model-1.safetensors", "b": "model-2.safetensors"})
    (blobs / INDEX).rename(blobs / "sha-index")
    for link, blob in (("model-1.safetensors", "sha-1"), ("model-2.safetensors", "sha-2"),
                       (INDEX, "sha-index")):
        os.symlink(Path("..", "..", "blobs", blob), snapshot / link)
    manifest = registry.read(snapshot)
    assert manifest.keys() == ["a", "b"] and manifest["b"].storage == "model-2.safetensors"


def test_weight_map_key_missing_from_its_shard(two_shards: Path) -> None:
    write_index(two_shards.parent, {"a": "s1.safetensors", "b": "s1.safetensors",
                                    "c": "s2.safetensors", "d": "s2.safetensors"})
    with pytest.raises(CorruptFileError, match=r'1 weight_map keys .*"d" → "s2.safetensors".* '
                                               r"in no shard"):
        registry.read(two_shards)


def test_weight_map_pointing_at_the_wrong_shard(two_shards: Path) -> None:
    write_index(two_shards.parent, {"a": "s1.safetensors", "b": "s2.safetensors",
                                    "c": "s2.safetensors"})
    with pytest.raises(CorruptFileError, match=r'"b" → "s2.safetensors", but it is in '
                                               r'"s1.safetensors"'):
        registry.read(two_shards)


def test_shard_tensor_missing_from_the_weight_map(two_shards: Path) -> None:
    write_index(two_shards.parent, {"a": "s1.safetensors", "c": "s2.safetensors"})
    with pytest.raises(CorruptFileError, match=r'1 tensors in the shards are not in the '
                                               r'weight_map \(e.g. "b" in "s1.safetensors"\)'):
        registry.read(two_shards)


def test_tensor_stored_in_two_shards(two_shards: Path) -> None:
    write_shard(two_shards.parent / "s2.safetensors", "c", "a")
    with pytest.raises(CorruptFileError, match='"a" is stored in two shards'):
        registry.read(two_shards)


def test_broken_shard_header_names_the_shard(two_shards: Path) -> None:
    shard = two_shards.parent / "s2.safetensors"
    shard.write_bytes(shard.read_bytes()[:-1])
    with pytest.raises(CorruptFileError, match="truncated download") as caught:
        registry.read(two_shards)
    assert str(caught.value).startswith(str(shard))


def test_lfs_pointer_shard(two_shards: Path) -> None:
    (two_shards.parent / "s2.safetensors").write_text(
        "version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 4\n")
    with pytest.raises(CorruptFileError, match="git lfs pull"):
        registry.read(two_shards.parent)


@pytest.mark.parametrize(("content", "match"), [
    (b'{"weight_map": {"a": "s1.safetensors"', "not valid JSON"),
    (b'["weight_map"]', "not an object"),
    (b'{"metadata": {}, "weight_maps": {}}', "no weight_map object"),
    (b'{"weight_map": ["s1.safetensors"]}', "no weight_map object"),
    (b'{"weight_map": {"a": 1}}', '"a" to a JSON number, not a shard file name'),
    (b'{"metadata": [1], "weight_map": {}}', "index metadata is a JSON array"),
    (b'{"weight_map": {"a": "s1.safetensors", "a": "s1.safetensors"}}', 'duplicate key "a"'),
    (b'{"weight_map": {}, "metadata": {"total_size": NaN}}', "NaN"),
    (b'\xff{"weight_map": {}}', "not valid UTF-8"),
    (b"", "not valid JSON"),
])
def test_malformed_index(content: bytes, match: str, two_shards: Path) -> None:
    two_shards.write_bytes(content)
    with pytest.raises(CorruptFileError, match=match) as caught:
        ShardedSafetensorsReader().read(two_shards)
    assert str(caught.value).startswith(f"{two_shards}: ") and "\n" not in str(caught.value)


def test_index_size_is_capped(two_shards: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index_module, "MAX_INDEX_BYTES", 16)
    with pytest.raises(CorruptFileError, match="too large for a safetensors index"):
        registry.read(two_shards)


def test_empty_weight_map_is_an_empty_checkpoint(tmp_path: Path) -> None:
    index = write_index(tmp_path, {})
    manifest = registry.read(index)
    assert len(manifest) == 0 and manifest.metadata["shards"] == []


def test_container_key_is_refused(two_shards: Path) -> None:
    with pytest.raises(CkptdiffError, match="no container"):
        registry.read(two_shards, "model")
