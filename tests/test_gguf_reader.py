"""The GGUF reader against llama.cpp's own Python library (``gguf``): its writer makes the files,
its ``GGUFReader`` (which maps the whole file) is the oracle for names, shapes, types, sizes,
offsets and values; and the loader's rules (gguf.cpp) for what must be refused, in one line."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

import ckptdiff.readers as registry
from ckptdiff.dtypes import BLOCK_DTYPES, DTYPE_BITS, GGML_TYPES, nbytes
from ckptdiff.errors import CkptdiffError, CorruptFileError

gguf = pytest.importorskip("gguf", reason="the gguf package (pip install 'ckptdiff[gguf]')")
np = pytest.importorskip("numpy")

FIXTURES = Path(__file__).resolve().parent.parent / "testdata" / "readers" / "gguf"


def _write(path: Path, tensors: dict[str, object], *, endianess: object = None,
           alignment: int | None = None, **raw: object) -> Path:
    kwargs = {} if endianess is None else {"endianess": endianess}
    writer = gguf.GGUFWriter(str(path), "llama", **kwargs)
    writer.add_block_count(1)
    if alignment is not None:
        writer.add_custom_alignment(alignment)
    for name, data in tensors.items():
        writer.add_tensor(name, data, raw_dtype=raw.get(name))  # type: ignore[arg-type]
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_block_sizes_match_the_gguf_package() -> None:
    sizes = gguf.GGML_QUANT_SIZES
    assert {int(t) for t in sizes} == set(GGML_TYPES)
    for qtype, (per_block, block_bytes) in sizes.items():
        name = GGML_TYPES[int(qtype)]
        if name in BLOCK_DTYPES:
            assert BLOCK_DTYPES[name] == (per_block, block_bytes), name
            assert name == qtype.name.lower()
        else:
            assert per_block == 1 and DTYPE_BITS[name] == 8 * block_bytes, name


@pytest.mark.parametrize("fixture", sorted(p.name for p in FIXTURES.glob("*.gguf")))
def test_manifest_equals_what_gguf_reader_reports(fixture: str) -> None:
    path = FIXTURES / fixture
    oracle = gguf.GGUFReader(str(path))
    manifest = registry.read(path)
    facts = manifest.metadata["gguf"]
    assert [t.key for t in manifest] == [t.name for t in oracle.tensors]
    for info, tensor in zip(manifest, oracle.tensors, strict=True):
        assert list(info.shape) == [int(d) for d in reversed(tensor.shape)], info.key
        assert info.dtype == GGML_TYPES[int(tensor.tensor_type)]
        assert info.nbytes == int(tensor.n_bytes)
        assert facts["data_offset"] + facts["offsets"][info.key] == int(tensor.data_offset)
        assert info.nbytes == nbytes(info.dtype, info.shape)
    assert facts["alignment"] == oracle.alignment
    assert facts["data_offset"] == oracle.data_offset
    assert set(facts["kv"]) == set(oracle.fields) - {"GGUF.version", "GGUF.tensor_count",
                                                      "GGUF.kv_count"}
    for key, field in oracle.fields.items():
        if key.startswith("GGUF."):
            continue
        if field.types[0] == gguf.GGUFValueType.ARRAY:
            assert facts["kv"][key]["length"] == len(field.data)
        elif field.types[0] == gguf.GGUFValueType.STRING:
            assert str(field.contents())[:256] == facts["kv"][key][:256]
        else:
            assert facts["kv"][key] == pytest.approx(field.contents())


def test_llama_facts_and_tokenizer_sizes() -> None:
    facts = registry.read(FIXTURES / "tiny_llama.gguf").metadata["gguf"]
    assert facts["architecture"] == "llama" and facts["block_count"] == 2
    assert facts["context_length"] == 256 and facts["head_count_kv"] == 2
    assert facts["tokenizer"] == {"model": "llama", "tokens": 16, "scores": 16, "token_type": 16}
    assert facts["kv"]["tokenizer.ggml.tokens"] == {"array": "string", "length": 16}
    quantized = registry.read(FIXTURES / "quantized.gguf").metadata["gguf"]
    assert quantized["alignment"] == 64
    assert quantized["kv"]["test.small"] == {"array": "int32", "length": 3, "values": [1, 2, 3]}
    assert quantized["kv"]["test.long"].endswith("… (1,000 bytes)")


def test_reads_the_header_only(tmp_path: Path) -> None:
    path = _write(tmp_path / "big.gguf", {"w": np.zeros((256, 1024), np.float32)})
    manifest = registry.read(path)
    assert manifest.metadata["bytes_read"] <= 4096 < path.stat().st_size


def test_a_missing_last_padding_is_accepted_as_llama_cpp_does(tmp_path: Path) -> None:
    path = _write(tmp_path / "pad.gguf", {"a": np.zeros(3, np.float32)})
    data = path.read_bytes()
    path.write_bytes(data[:len(data) - (len(data) % 32 or 20)])  # cut into the padding only
    assert registry.read(path).keys() == ["a"]
    path.write_bytes(data[:registry.read(path).metadata["gguf"]["data_offset"] + 11])
    with pytest.raises(CorruptFileError, match="past the end of the file"):
        registry.read(path)


def _one_line(path: Path, match: str) -> None:
    with pytest.raises(CkptdiffError, match=match) as caught:
        registry.read(path)
    assert "\n" not in str(caught.value) and str(caught.value).startswith(str(path))


def test_big_endian_and_unknown_versions_are_refused(tmp_path: Path) -> None:
    path = _write(tmp_path / "be.gguf", {"a": np.zeros(4, np.float32)},
                  endianess=gguf.GGUFEndian.BIG)
    _one_line(path, "big-endian")
    good = _write(tmp_path / "le.gguf", {"a": np.zeros(4, np.float32)})
    data = bytearray(good.read_bytes())
    for version, match in ((1, "version 1"), (4, "unknown GGUF version 4"), (0, "version 0")):
        data[4:8] = struct.pack("<I", version)
        good.write_bytes(bytes(data))
        _one_line(good, match)


def _header(kv: bytes = b"", tensors: bytes = b"", n_kv: int = 0, n_tensors: int = 0) -> bytes:
    return b"GGUF" + struct.pack("<IQQ", 3, n_tensors, n_kv) + kv + tensors


def _text(value: str) -> bytes:
    raw = value.encode()
    return struct.pack("<Q", len(raw)) + raw


def _tensor(name: str, dims: tuple[int, ...], ggml_type: int = 0, offset: int = 0) -> bytes:
    return (_text(name) + struct.pack("<I", len(dims)) + struct.pack(f"<{len(dims)}Q", *dims)
            + struct.pack("<IQ", ggml_type, offset))


@pytest.mark.parametrize(("blob", "match"), [
    (_header(n_kv=2**63), "more than the"),
    (_header(n_tensors=2**40), "more than the"),
    (_header(_text("a") + struct.pack("<II", 9, 9) + struct.pack("<Q", 1), n_kv=1),
     "array of arrays"),
    (_header(_text("a") + struct.pack("<IIQ", 9, 8, 2**62), n_kv=1), "elements, more than"),
    (_header(_text("a") + struct.pack("<IQ", 8, 2**60), n_kv=1), "truncated"),
    (_header(_text("a") + struct.pack("<Ib", 1, 0) + _text("a") + struct.pack("<Ib", 1, 0),
             n_kv=2), "duplicate metadata key"),
    (_header(struct.pack("<Q", 0), n_kv=1), "empty"),
    (_header(_text("general.alignment") + struct.pack("<IQ", 10, 32), n_kv=1), "uint32"),
    (_header(_text("general.alignment") + struct.pack("<II", 4, 48), n_kv=1), "power of 2"),
    (_header(_text("x") + struct.pack("<I", 42), n_kv=1), "unknown GGUF type 42"),
    (_header(tensors=_tensor("n" * 64, (4,)), n_tensors=1), "64 bytes or more"),
    (_header(tensors=_tensor("a", (1, 1, 1, 1, 1)), n_tensors=1), "5 dimensions"),
    (_header(tensors=_tensor("a", (2**62, 2**3)), n_tensors=1), "overflow int64"),
    (_header(tensors=_tensor("a", (2**63,)), n_tensors=1), "overflow int64"),
    (_header(tensors=_tensor("a", (4,), 4), n_tensors=1), "unknown ggml type 4"),
    (_header(tensors=_tensor("a", (48, 2), 2), n_tensors=1), "not a multiple of its block"),
    (_header(tensors=_tensor("a", (4,)) + _tensor("a", (4,), offset=32), n_tensors=2),
     "duplicate tensor name"),
    (_header(tensors=_tensor("a", (4,), offset=32), n_tensors=1), "expects 0"),
    (_header(tensors=_tensor("a", (2**20,)), n_tensors=1), "past the end of the file"),
])
def test_what_llama_cpp_refuses_is_one_line(blob: bytes, match: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.gguf"
    path.write_bytes(blob + bytes(64))
    _one_line(path, match)


def test_a_tokenizer_of_many_strings_is_skipped_not_kept(tmp_path: Path) -> None:
    writer = gguf.GGUFWriter(str(tmp_path / "tok.gguf"), "llama")
    writer.add_token_list([f"token-{i}" * 3 for i in range(50_000)])
    writer.add_tensor("a", np.zeros(4, np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    facts = registry.read(tmp_path / "tok.gguf").metadata["gguf"]
    assert facts["tokenizer"] == {"tokens": 50_000}
