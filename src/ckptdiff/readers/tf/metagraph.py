"""Reads the MetaGraphDef ckptdiff needs from ``saved_model.pb``, skipping the GraphDef.

``SavedModel`` = {1: schema version, 2: repeated MetaGraphDef}; ``MetaGraphDef`` = {1:
MetaInfoDef (4: tags, 5: TensorFlow version), 2: GraphDef, …, 5: signature map entries, 7:
SavedObjectGraph}. Only fields 1, 5 and 7 of the chosen meta graph are read.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ckptdiff.errors import CkptdiffError
from ckptdiff.readers.base import CountingFile, Location
from ckptdiff.readers.tf.bundle import parse_proto
from ckptdiff.readers.tf.proto.saved_model_pb2 import (
    MetaInfoDef,
    SavedObjectGraph,
    SignatureDef,
    SignatureDefEntry,
)
from ckptdiff.readers.tf.wire import LENGTH_DELIMITED, VARINT, WireField, iter_fields, read_payload

MAX_META_INFO_BYTES = 16 * 1024 * 1024
MAX_SIGNATURE_BYTES = 16 * 1024 * 1024
MAX_OBJECT_GRAPH_BYTES = 128 * 1024 * 1024
SERVING_TAG = "serve"


@dataclass
class MetaGraph:
    """The parts of one MetaGraphDef that describe variables and signatures."""

    tags: list[str]
    tensorflow_version: str
    signatures: dict[str, SignatureDef] = field(default_factory=dict)
    object_graph: SavedObjectGraph | None = None
    fields: list[WireField] = field(default_factory=list)


@dataclass
class SavedModelProto:
    """What ``saved_model.pb`` says: its schema version and the chosen meta graph."""

    schema_version: int
    meta_graph_count: int
    meta_graph: MetaGraph
    bytes_read: int


def _scan_meta_graph(file: CountingFile, where: WireField, display: str) -> MetaGraph:
    end = where.value + where.length
    fields = list(iter_fields(file, where.value, end, display, "a MetaGraphDef"))
    info = MetaInfoDef()
    for item in fields:
        if item.number == 1 and item.wire_type == LENGTH_DELIMITED:
            data = read_payload(file, item, MAX_META_INFO_BYTES, display, "meta_info_def")
            info.MergeFrom(_meta_info(data, display))
    return MetaGraph(list(info.tags), info.tensorflow_version, fields=fields)


def _meta_info(data: bytes, display: str) -> MetaInfoDef:
    # MetaInfoDef's stripped_op_list (field 2) is large and unneeded: parse it as unknown bytes.
    return parse_proto(MetaInfoDef, data, "meta_info_def", display)


def _load_meta_graph(file: CountingFile, graph: MetaGraph, display: str) -> None:
    for item in graph.fields:
        if item.wire_type != LENGTH_DELIMITED:
            continue
        if item.number == 5:
            data = read_payload(file, item, MAX_SIGNATURE_BYTES, display, "a signature")
            entry = parse_proto(SignatureDefEntry, data, "a signature", display)
            graph.signatures[entry.key] = entry.value
        elif item.number == 7:
            data = read_payload(file, item, MAX_OBJECT_GRAPH_BYTES, display, "object_graph_def")
            graph.object_graph = parse_proto(SavedObjectGraph, data, "object_graph_def", display)


def read_saved_model_proto(pb: Location, display: str) -> SavedModelProto:
    """Walk ``saved_model.pb``: pick the ``serve`` meta graph (else the first) and read it."""
    try:
        file = CountingFile(pb)
    except OSError as exc:
        raise CkptdiffError(f"{display}: cannot open {pb.name}: {exc.strerror}") from None
    with file:
        schema_version = 0
        graphs: list[MetaGraph] = []
        for item in iter_fields(file, 0, file.size, display, pb.name):
            if item.number == 1 and item.wire_type == VARINT:
                schema_version = item.value
            elif item.number == 2 and item.wire_type == LENGTH_DELIMITED:
                graphs.append(_scan_meta_graph(file, item, display))
        if not graphs:
            raise CkptdiffError(f"{display}: {pb.name} holds no meta graph: not a SavedModel?")
        chosen = next((g for g in graphs if SERVING_TAG in g.tags), graphs[0])
        _load_meta_graph(file, chosen, display)
        return SavedModelProto(schema_version, len(graphs), chosen, file.bytes_read)
