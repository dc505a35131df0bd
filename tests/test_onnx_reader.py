"""The ONNX reader against the ``onnx`` package as the oracle (fixtures: testdata/readers/onnx).

``onnx.load(path, load_external_data=False)`` parses the whole ModelProto; every initializer's
name, dims and data type, the graph inputs/outputs and the opsets must be what ckptdiff's
header walk reports, and the walk must not read the weights.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import ckptdiff.readers as registry
from ckptdiff.errors import CkptdiffError, CorruptFileError
from ckptdiff.readers.onnx.dtypes import ONNX_DTYPES, ONNX_OTHER_BITS

onnx = pytest.importorskip("onnx", reason="the onnx package is the oracle (pip install onnx)")

FIXTURES = Path(__file__).resolve().parent.parent / "testdata" / "readers" / "onnx"
MODELS = ["dynamo.onnx", "legacy.onnx", "external/model.onnx", "typed.onnx"]


def _dims(value_info: Any) -> list[int | str | None]:
    shape = value_info.type.tensor_type.shape
    return [d.dim_value if d.HasField("dim_value") else d.dim_param or None for d in shape.dim]


@pytest.mark.parametrize("name", MODELS)
def test_manifest_matches_onnx_load(name: str) -> None:
    path = FIXTURES / name
    proto = onnx.load(str(path), load_external_data=False)
    manifest = registry.read(path)
    expected = [(t.name, tuple(t.dims), t.data_type) for t in proto.graph.initializer]
    expected += [(s.values.name, tuple(s.dims), s.values.data_type)
                 for s in proto.graph.sparse_initializer]
    assert [(t.key, t.shape) for t in manifest.tensors] == [(n, d) for n, d, _ in expected]
    for tensor, (_, _, code) in zip(manifest.tensors, expected, strict=True):
        assert tensor.dtype == ONNX_DTYPES.get(code, "other"), tensor.key
    meta = manifest.metadata
    assert meta["ir_version"] == proto.ir_version
    assert meta["opsets"] == {o.domain: o.version for o in proto.opset_import}
    assert meta["producer"] == " ".join(
        p for p in (proto.producer_name, proto.producer_version) if p)
    assert [(v["name"], v["shape"]) for v in meta["inputs"]] == [
        (v.name, _dims(v)) for v in proto.graph.input]
    assert [v["name"] for v in meta["outputs"]] == [v.name for v in proto.graph.output]
    external = {t.name: {e.key: e.value for e in t.external_data}
                for t in proto.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL}
    assert meta.get("external_data", {}) == external


def test_field_numbers_are_onnx_protos() -> None:
    numbers = {
        onnx.ModelProto: {"ir_version": 1, "producer_name": 2, "producer_version": 3,
                          "domain": 4, "model_version": 5, "graph": 7, "opset_import": 8,
                          "metadata_props": 14},
        onnx.GraphProto: {"name": 2, "initializer": 5, "input": 11, "output": 12,
                          "sparse_initializer": 15},
        onnx.TensorProto: {"dims": 1, "data_type": 2, "segment": 3, "float_data": 4,
                           "int32_data": 5, "string_data": 6, "int64_data": 7, "name": 8,
                           "raw_data": 9, "double_data": 10, "uint64_data": 11,
                           "external_data": 13, "data_location": 14},
        onnx.SparseTensorProto: {"values": 1, "indices": 2, "dims": 3},
        onnx.ValueInfoProto: {"name": 1, "type": 2},
        onnx.TypeProto: {"tensor_type": 1, "sequence_type": 4, "map_type": 5,
                         "sparse_tensor_type": 8, "optional_type": 9},
    }
    for message, fields in numbers.items():
        found = {n: message.DESCRIPTOR.fields_by_name[n].number for n in fields}
        assert found == fields, message.__name__
    codes = dict(onnx.TensorProto.DataType.items())
    assert ONNX_DTYPES[codes["FLOAT"]] == "float32" and ONNX_DTYPES[codes["BFLOAT16"]] == \
        "bfloat16" and ONNX_DTYPES[codes["FLOAT8E4M3FN"]] == "float8_e4m3fn"
    assert ONNX_DTYPES[codes["FLOAT8E5M2"]] == "float8_e5m2"
    assert set(ONNX_DTYPES) | set(ONNX_OTHER_BITS) == set(codes.values()) - {0}


def _big_model(path: Path, megabytes: int) -> None:
    from onnx import TensorProto, helper

    weight = helper.make_tensor("big.weight", TensorProto.FLOAT, [megabytes, 262144],
                                b"\0" * (megabytes << 20), raw=True)
    graph = helper.make_graph([helper.make_node("Identity", ["big.weight"], ["y"])], "g", [],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              initializer=[weight])
    onnx.save_model(helper.make_model(graph), str(path))


def test_inline_weights_are_skipped_not_read(tmp_path: Path) -> None:
    path = tmp_path / "big.onnx"
    _big_model(path, 8)
    manifest = registry.read(path)
    assert [(t.key, t.shape, t.nbytes) for t in manifest.tensors] == [
        ("big.weight", (8, 262144), 8 << 20)]
    assert manifest.metadata["bytes_read"] < 4096


def test_raw_data_of_the_wrong_size_is_refused(tmp_path: Path) -> None:
    from onnx import TensorProto, helper

    weight = helper.make_tensor("w", TensorProto.FLOAT, [4], b"\0" * 16, raw=True)
    weight.raw_data = b"\0" * 12  # the helper checks the size; a damaged file does not
    graph = helper.make_graph([], "g", [], [], initializer=[weight])
    path = tmp_path / "bad.onnx"
    onnx.save_model(helper.make_model(graph), str(path))
    with pytest.raises(CorruptFileError, match="holds 12 bytes of raw_data, not 16"):
        registry.read(path)


def test_external_data_outside_the_folder_or_missing_is_reported(tmp_path: Path) -> None:
    from onnx import TensorProto, helper
    from onnx.external_data_helper import set_external_data

    weights = []
    for name, location in (("a", "../outside.bin"), ("b", "missing.bin")):
        tensor = helper.make_tensor(name, TensorProto.FLOAT, [2], b"\0" * 8, raw=True)
        set_external_data(tensor, location=location, offset=0, length=8)
        tensor.data_location = TensorProto.EXTERNAL
        tensor.ClearField("raw_data")
        weights.append(tensor)
    graph = helper.make_graph([], "g", [], [], initializer=weights)
    path = tmp_path / "model.onnx"
    path.write_bytes(helper.make_model(graph).SerializeToString())
    manifest = registry.read(path)
    assert [t.storage for t in manifest.tensors] == ["../outside.bin", "missing.bin"]
    warnings = manifest.metadata["warnings"]
    assert any("'../outside.bin' is outside the model's folder" in w for w in warnings)
    assert any("'missing.bin' is missing" in w for w in warnings)


def test_key_is_refused() -> None:
    with pytest.raises(CkptdiffError, match="no containers"):
        registry.read(FIXTURES / "dynamo.onnx", "state_dict")


def test_a_savedmodel_proto_is_not_claimed(tmp_path: Path) -> None:
    from ckptdiff.readers.onnx.reader import OnnxReader

    pb = next((FIXTURES.parent / "tf").rglob("saved_model.pb"))
    assert not OnnxReader().sniff(pb.read_bytes()[:4096], pb)
    # A ModelProto whose graph starts past the first 4 KiB (a long doc_string) is still claimed.
    proto = onnx.load(str(FIXTURES / "legacy.onnx"))
    proto.doc_string = "x" * 10_000
    path = tmp_path / "long_doc.onnx"
    onnx.save_model(proto, str(path))
    assert OnnxReader().sniff(path.read_bytes()[:4096], path)
    assert registry.read(path).format == "onnx"


def test_reading_imports_neither_onnx_nor_protobuf() -> None:
    # A .onnx is sniffed by the ONNX reader first, so not even the TF readers (protobuf) load.
    script = ("import sys, ckptdiff.readers as r\n"
              f"r.read({str(FIXTURES / 'dynamo.onnx')!r})\n"
              "print(sorted(m for m in sys.modules if m.split('.')[0] in "
              "('onnx', 'torch', 'google', 'numpy')))\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_a_graph_of_endless_empty_fields_is_refused(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import ckptdiff.readers.onnx.proto as proto

    monkeypatch.setattr(proto, "MAX_FIELDS", 1000)
    empty_nodes = b"\x0a\x00" * 1001  # GraphProto.node, zero bytes each
    graph = b"\x3a" + bytes([0xd2, 0x0f]) + empty_nodes  # ModelProto.graph, 2,002 bytes
    path = tmp_path / "fields.onnx"
    path.write_bytes(b"\x08\x09" + graph)
    with pytest.raises(CorruptFileError, match="more than 1,000 fields"):
        registry.read(path)


def test_too_many_initializers_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import ckptdiff.readers.onnx.proto as proto

    monkeypatch.setattr(proto, "MAX_INITIALIZERS", 2)
    with pytest.raises(CorruptFileError, match="more than 2 initializers"):
        registry.read(FIXTURES / "typed.onnx")
