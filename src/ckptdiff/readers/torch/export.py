"""The ``torch-export`` reader: ``torch.export.save`` archives (``.pt2``), by their JSON alone.

Layout (``torch/export/pt2_archive/``): a zip under one root folder with ``archive_format``
(``pt2``), ``models/<model>.json`` (the serialized program: graph, signature, versions),
``data/weights/<model>_weights_config.json`` (every state-dict entry: its file ``weight_<n>`` and
tensor metadata; tied weights share a file), ``data/constants/<model>_constants_config.json``
(non-persistent buffers and lifted tensor constants) and the raw weight files. The reader parses
the configs (:mod:`.export_config`) and the program's signature; weight files are checked by
their declared size in the central directory, never read.

Keys are ``torch.export.load(path).state_dict``'s, which are the original module's
``state_dict()`` keys: parameters and persistent buffers in the config's order. Constants are not
in it; they are listed in ``metadata["constants"]``. Entries torch stores pickled
(``use_pickle``: tensor subclasses) are described from their metadata; ``torch.export.load``
unpickles them with ``weights_only=False``, which ``metadata["warnings"]`` says.
"""

from __future__ import annotations

import json
import re
import zipfile
from typing import IO, ClassVar, cast

from ckptdiff.errors import CkptdiffError, CorruptFileError, UsageError
from ckptdiff.manifest import Manifest, TensorInfo
from ckptdiff.readers.base import CountingFile, Location, open_binary, open_counting
from ckptdiff.readers.torch.export_config import (
    MAX_CONFIG_BYTES,
    STRIDED,
    Payload,
    parse_config,
)
from ckptdiff.readers.torch.zip_records import check_version_record
from ckptdiff.readers.zip_safety import open_torch_archive, read_member

_FORMAT = re.compile(r"([^/]+)/archive_format")
# torch/export/pt2_archive/constants.py: ARCHIVE_VERSION_VALUE of torch 2.13
ARCHIVE_VERSION = b"0"
_MODEL = re.compile(r"models/([^/]+)\.json")
PICKLED_NOTE = ("torch.export.load unpickles the weights listed in pickled_weights with "
                "torch.load(weights_only=False), which runs code from the file: load it only if "
                "you trust where it came from")


class TorchExportReader:
    """``torch.export.save`` archives (``.pt2``)."""

    name: ClassVar[str] = "torch-export"
    extensions: ClassVar[tuple[str, ...]] = (".pt2",)
    description: ClassVar[str] = "torch.export.save archive (ExportedProgram, .pt2)"
    requires: ClassVar[tuple[str, ...]] = ()
    extra: ClassVar[str | None] = None

    def sniff(self, head: bytes, path: Location) -> bool:
        """A zip with ``<root>/archive_format`` and ``<root>/models/*.json`` members."""
        if not head.startswith(b"PK\x03\x04"):
            return False
        try:
            with open_binary(path) as handle, zipfile.ZipFile(handle) as archive:
                names = archive.namelist()
        except Exception:  # not a readable zip: not ours
            return False
        roots = {m.group(1) for m in map(_FORMAT.fullmatch, names) if m}
        return any(n.split("/", 1)[0] in roots and _MODEL.fullmatch(n.split("/", 1)[-1])
                   for n in names)

    def read(self, path: Location, key: str | None = None) -> Manifest:
        """The weights of one model of the archive (``key`` names it when there are several)."""
        raw = open_counting(path)
        with raw:
            archive = open_torch_archive(cast(IO[bytes], raw), raw.size, str(path))
            members = {info.filename: info for info in archive.infolist()}
            root = _root(members, str(path))
            check_version_record(lambda info, limit: _member(raw, info, str(path), limit),
                                 members, root, path)
            if _member(raw, members[f"{root}/archive_format"], str(path), 16) != b"pt2":
                raise CorruptFileError(f"{path}: {root}/archive_format does not say pt2")
            _check_archive_version(raw, members, root, str(path))
            model = _model_name(members, root, key, str(path))
            program = _json(raw, members, f"{root}/models/{model}.json", str(path))
            weights = _config(raw, members, f"{root}/data/weights/{model}_weights_config.json",
                              str(path), required=True)
            constants = _config(raw, members,
                                f"{root}/data/constants/{model}_constants_config.json",
                                str(path), required=False)
            for payload in weights:
                _check_file(members, f"{root}/data/weights/{payload.path_name}", payload,
                            str(path))
            metadata = _metadata(program, model, constants)
            metadata["bytes_read"] = raw.bytes_read
        pickled = [p.fqn for p in weights if p.use_pickle]
        if pickled:
            metadata["pickled_weights"] = pickled
            metadata["warnings"] = [PICKLED_NOTE]
        layouts = {p.fqn: p.layout for p in weights if p.layout != STRIDED}
        if layouts:
            metadata["layouts"] = layouts
        shared: dict[str, list[str]] = {}
        for payload in weights:
            shared.setdefault(payload.path_name, []).append(payload.fqn)
        tensors = tuple(_info(p, f"{root}/data/weights/{p.path_name}", shared[p.path_name])
                        for p in weights)
        return Manifest(path=str(path), format=self.name, tensors=tensors,
                        container_key=model if key is not None else None, metadata=metadata)


def _info(payload: Payload, storage: str, sharing: list[str]) -> TensorInfo:
    count = 1
    for dim in payload.shape:
        count *= dim
    return TensorInfo(
        key=payload.fqn, shape=payload.shape, dtype=payload.dtype, device=payload.device,
        nbytes=count * payload.bits // 8, storage=None if payload.use_pickle else storage,
        aliases=tuple(k for k in sharing if k != payload.fqn) if not payload.use_pickle else (),
        kind="parameter" if payload.is_param else "buffer",
        trainable=payload.requires_grad if payload.is_param else False,
        stride=payload.stride, storage_offset=payload.storage_offset)


def _metadata(program: object, model: str, constants: list[Payload]) -> dict[str, object]:
    meta: dict[str, object] = {"model": model}
    if isinstance(program, dict):
        for field in ("torch_version", "schema_version"):
            if field in program and isinstance(program[field], (str, dict)):
                meta[field] = program[field]
        signature = program.get("graph_module", {})
        signature = signature.get("signature", {}) if isinstance(signature, dict) else {}
        specs = signature.get("input_specs", []) if isinstance(signature, dict) else []
        if isinstance(specs, list):
            kinds = [next(iter(s)) for s in specs if isinstance(s, dict) and len(s) == 1]
            meta["inputs"] = {kind: kinds.count(kind) for kind in dict.fromkeys(kinds)}
    meta["constants"] = [{"key": c.fqn, "shape": list(c.shape), "dtype": c.dtype}
                         for c in constants]
    return meta


def _check_archive_version(raw: CountingFile, members: dict[str, zipfile.ZipInfo], root: str,
                           path: str) -> None:
    # torch.export.load reads the record as text and requires exactly its own ARCHIVE_VERSION
    # ("0" in torch 2.13): no newline, no whitespace; a missing record is refused too
    info = members.get(f"{root}/archive_version")
    found = None if info is None else _member(raw, info, path, 16)
    if found != ARCHIVE_VERSION:
        said = "has no archive_version record" if found is None else (
            f"archive_version says {found[:16]!r}")
        raise CorruptFileError(f"{path}: the .pt2 {said}; torch.export.load reads only "
                               f"{ARCHIVE_VERSION.decode()!r}")


def _root(members: dict[str, zipfile.ZipInfo], path: str) -> str:
    roots = [m.group(1) for m in map(_FORMAT.fullmatch, members) if m]
    if len(roots) != 1:
        raise CorruptFileError(f"{path}: a .pt2 archive has one archive_format, this one "
                               f"{len(roots)}")
    return roots[0]


def _model_name(members: dict[str, zipfile.ZipInfo], root: str, key: str | None,
                path: str) -> str:
    names = sorted(m.group(1) for n in members
                   if n.startswith(f"{root}/") and (m := _MODEL.fullmatch(n[len(root) + 1:])))
    if key is not None and key not in names:
        raise UsageError(f"{path}: no model {key!r} in the archive (it holds "
                         f"{', '.join(names) or 'none'})")
    if key is None and len(names) != 1:
        raise UsageError(f"{path}: the archive holds models {', '.join(names)}: pick one with "
                         "--key")
    chosen = key or names[0]
    if f"{root}/data/weights/{chosen}.pt" in members:
        raise CkptdiffError(f"{path}: weights in the legacy .pt2 layout (data/weights/"
                            f"{chosen}.pt) are not read; re-save with torch.export.save")
    return chosen


def _json(raw: CountingFile, members: dict[str, zipfile.ZipInfo], name: str,
          path: str) -> object:
    try:
        return json.loads(_member(raw, _required(members, name, path), path, MAX_CONFIG_BYTES))
    except (ValueError, RecursionError):
        raise CorruptFileError(f"{path}: {name} is not valid JSON: damaged archive?") from None


def _config(raw: CountingFile, members: dict[str, zipfile.ZipInfo], name: str, path: str,
            required: bool) -> list[Payload]:
    if name not in members and not required:
        return []
    data = _member(raw, _required(members, name, path), path, MAX_CONFIG_BYTES)
    return parse_config(data, path, name)


def _required(members: dict[str, zipfile.ZipInfo], name: str, path: str) -> zipfile.ZipInfo:
    if name not in members:
        raise CorruptFileError(f"{path}: {name} is missing from the archive: damaged file?")
    return members[name]


def _member(raw: CountingFile, info: zipfile.ZipInfo, path: str, limit: int) -> bytes:
    try:
        return read_member(cast(IO[bytes], raw), info, path, limit)
    except OSError as exc:
        raise CkptdiffError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _check_file(members: dict[str, zipfile.ZipInfo], name: str, payload: Payload,
                path: str) -> None:
    info = members.get(name)
    if info is None:
        raise CorruptFileError(f"{path}: weight file {name} of {payload.fqn!r} is missing: "
                               "truncated or damaged file?")
    if not payload.use_pickle and 0 < info.file_size < payload.extent_bytes():
        raise CorruptFileError(
            f"{path}: {payload.fqn!r} needs {payload.extent_bytes():,} bytes of {name}, which "
            f"holds {info.file_size:,}: truncated or damaged file?")
