"""The torch readers against torch itself: every case is saved with ``torch.save`` and loaded with
``torch.load(weights_only=True)``; the manifest must agree on keys, shapes, dtypes, strides,
storage offsets, byte counts, trainable flags and which tensors share a storage.

Cases run in the zip format (pickle protocols 2 and 4) and the legacy format.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ckptdiff.dtypes import TORCH_DTYPES
from ckptdiff.errors import CkptdiffError, UnsafeContentError
from ckptdiff.manifest import Manifest
from ckptdiff.readers import read

torch = pytest.importorskip("torch")
nn = torch.nn

CLASSIC_DTYPES = ("float64", "float32", "float16", "bfloat16", "int64", "int32", "int16", "int8",
                  "uint8", "bool", "complex64", "complex128")
# Saved through untyped storages; torch's legacy loader cannot read these back.
NEW_DTYPES = ("float8_e4m3fn", "float8_e5m2", "uint16", "uint32", "uint64", "float8_e4m3fnuz",
              "float8_e5m2fnuz", "float8_e8m0fnu", "complex32", "float4_e2m1fn_x2", "bits8",
              "bits16")


def _dtypes(names: tuple[str, ...]) -> dict[str, Any]:
    return {n: torch.empty(2, 3, dtype=getattr(torch, n)) for n in names if hasattr(torch, n)}


def _views() -> dict[str, Any]:
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    return {"base": base, "transposed": base.t(), "strided": base[1:, ::2], "row": base[2],
            "flat_slice": base.view(-1)[5:9], "column": base[:, 3],
            "expanded": base[0:1].expand(3, 6), "other": torch.ones(3)}


def _slices_only() -> dict[str, Any]:
    # Only slices are saved: their shared storage is larger than any of them.
    big = torch.arange(100, dtype=torch.int64)
    return {"a": big[10:20], "b": big[50:53].view(3, 1), "c": big[::7]}


def _tied() -> dict[str, Any]:
    class Tied(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(5, 3)
            self.out = nn.Linear(3, 5, bias=False)
            self.out.weight = self.emb.weight

    shared = torch.randn(2, 2)
    return {**Tied().state_dict(), "extra.a": shared, "extra.b": shared}


def _cnn() -> dict[str, Any]:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 2, 1),
                          nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(2, 3))
    model(torch.randn(2, 3, 3, 3))
    return model.state_dict()


def _adam() -> tuple[Any, Any]:
    model = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.Linear(4, 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.003)
    model(torch.randn(5, 3)).sum().backward()
    optimizer.step()
    return model, optimizer


def _lightning() -> dict[str, Any]:
    model, optimizer = _adam()
    return {"epoch": 2, "global_step": 7, "state_dict": {f"net.{k}": v for k, v in
                                                         model.state_dict().items()},
            "optimizer_states": [optimizer.state_dict()], "lr_schedulers": [], "loops": {}}


def _model_optimizer() -> dict[str, Any]:
    model, optimizer = _adam()
    return {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": 1}


def _ema_model() -> dict[str, Any]:
    model, _ = _adam()
    ema = {k: v.clone() * 0.5 for k, v in model.state_dict().items()}
    return {"ema": ema, "model": model.state_dict()}


def _parameters() -> dict[str, Any]:
    return {"w": nn.Parameter(torch.randn(3, 2)), "frozen": nn.Parameter(torch.zeros(4),
                                                                         requires_grad=False),
            "buffer_like": torch.ones(2), "half": nn.Parameter(torch.zeros(2, dtype=torch.half))}


def _scalars_and_empty() -> dict[str, Any]:
    return {"scalar": torch.tensor(3.5), "int_scalar": torch.tensor(7), "empty": torch.zeros(0),
            "empty_2d": torch.zeros(2, 0, 3), "bool_scalar": torch.tensor(True)}


def _with_python_state() -> dict[str, Any]:
    # Saved through _rebuild_from_type_v2 and _rebuild_parameter_with_state.
    tensor = torch.ones(2, 3)
    tensor.note = "calibrated"
    param = nn.Parameter(torch.zeros(4))
    param.tag = 7
    return {"tensor": tensor, "param": param}


def _nested() -> dict[str, Any]:
    return {"state_dict": {"encoder": {"layers": [{"w": torch.ones(2)}, {"w": torch.ones(3)}]},
                           "head.bias": torch.zeros(1)}}


# name -> (builder, container key the reader must choose, optimizer prefixes, zip-only)
CASES: dict[str, tuple[Callable[[], Any], str | None, tuple[str, ...], bool]] = {
    "dtypes_classic": (lambda: _dtypes(CLASSIC_DTYPES), None, (), False),
    "dtypes_new": (lambda: _dtypes(NEW_DTYPES), None, (), True),
    "scalars_and_empty": (_scalars_and_empty, None, (), False),
    "views": (_views, None, (), False),
    "slices_only": (_slices_only, None, (), False),
    "tied": (_tied, None, (), False),
    "cnn_batchnorm": (_cnn, None, (), False),
    "adam_state_dict": (lambda: _adam()[1].state_dict(), None, ("",), False),
    "lightning": (_lightning, "state_dict", ("optimizer_states",), False),
    "model_optimizer": (_model_optimizer, "model", ("optimizer",), False),
    "ema_model": (_ema_model, "model", (), False),
    "parameters": (_parameters, None, (), False),
    "python_state": (_with_python_state, None, (), False),
    "nested": (_nested, "state_dict", (), False),
}
FORMATS = {"zip": {}, "zip-protocol4": {"pickle_protocol": 4},
           "legacy": {"_use_new_zipfile_serialization": False}}


def vocabulary(dtype: Any) -> str:
    """The contract dtype name of a torch dtype."""
    return TORCH_DTYPES.get(str(dtype).removeprefix("torch."), "other")


def flatten(value: Any, prefix: str) -> dict[str, Any]:
    """Tensors under ``value`` keyed like the reader keys them."""
    if isinstance(value, torch.Tensor):
        return {prefix: value}
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(
        value, (list, tuple)) else []
    out: dict[str, Any] = {}
    for key, item in items:
        out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
    return out


def expected_tensors(loaded: Any, container: str | None,
                     optimizers: tuple[str, ...]) -> tuple[dict[str, Any], set[str]]:
    """The model tensors and optimizer slot keys the manifest must hold."""
    if optimizers == ("",):  # the file is an optimizer state dict
        slots = flatten(loaded, "")
        return slots, set(slots)
    tensors = flatten(loaded if container is None else loaded[container], "")
    slots = {}
    for prefix in optimizers:
        slots.update(flatten(loaded[prefix], prefix))
    return {**tensors, **slots}, set(slots)


def compare_with_oracle(manifest: Manifest, tensors: dict[str, Any], slots: set[str],
                        device: str = "cpu") -> None:
    """Assert that every field the oracle can check agrees."""
    assert sorted(manifest.keys()) == sorted(tensors)
    for key, tensor in tensors.items():
        info = manifest[key]
        assert info.shape == tuple(tensor.shape), key
        assert info.dtype == vocabulary(tensor.dtype), key
        assert info.stride == tensor.stride(), key
        assert info.storage_offset == tensor.storage_offset(), key
        assert info.nbytes == tensor.numel() * tensor.element_size(), key
        assert info.device == device, key
        assert info.kind == ("optimizer_slot" if key in slots else info.kind)
        if key not in slots:
            assert info.kind in ("parameter", "buffer")
        assert info.trainable == (tensor.requires_grad if isinstance(tensor, nn.Parameter)
                                  else None), key
    groups: dict[int, set[str]] = {}
    for key, tensor in tensors.items():
        if tensor.untyped_storage().nbytes():
            groups.setdefault(tensor.untyped_storage().data_ptr(), set()).add(key)
    for members in groups.values():
        for key in members:
            assert set(manifest[key].aliases) == members - {key}, key


def save(obj: Any, path: Path, fmt: str) -> Path:
    """``torch.save`` in one of :data:`FORMATS`."""
    torch.save(obj, path, **FORMATS[fmt])
    return path


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("case", list(CASES))
def test_manifest_matches_torch_load(case: str, fmt: str, tmp_path: Path) -> None:
    build, container, optimizers, zip_only = CASES[case]
    if zip_only and fmt == "legacy":
        pytest.skip("torch cannot load these dtypes from the legacy format")
    torch.manual_seed(0)
    path = save(build(), tmp_path / f"{case}.pt", fmt)
    manifest = read(path)
    assert manifest.format == ("torch-legacy" if fmt == "legacy" else "torch-zip")
    assert manifest.container_key == container
    # torch's weights_only unpickler knows protocol 2 only; these files are our own.
    loaded = torch.load(path, weights_only=fmt != "zip-protocol4")
    tensors, slots = expected_tensors(loaded, container, optimizers)
    compare_with_oracle(manifest, tensors, slots)
    assert manifest.metadata["bytes_read"] <= path.stat().st_size


def test_new_dtypes_in_legacy_format_are_read_with_a_warning(tmp_path: Path) -> None:
    path = save(_dtypes(("uint16", "float8_e4m3fn", "float32")), tmp_path / "n.pt", "legacy")
    with pytest.raises(AttributeError):  # torch's own loader fails on these files
        torch.load(path, weights_only=True)
    manifest = read(path)
    assert manifest["uint16"].dtype == "uint16" and manifest["uint16"].nbytes == 12
    assert manifest["float8_e4m3fn"].shape == (2, 3)
    assert "float8_e4m3fn, uint16" in manifest.metadata["warnings"][0]


def _rewrite_location(path: Path, location: str) -> Path:
    """Rewrite every storage location in data.pkl from 'cpu' to ``location``."""
    source = zipfile.ZipFile(path)
    target_path = path.with_name(f"{path.stem}_{location.replace(':', '_')}.pt")
    old = b"X\x03\x00\x00\x00cpu"
    new = b"X" + len(location).to_bytes(4, "little") + location.encode()
    with zipfile.ZipFile(target_path, "w", zipfile.ZIP_STORED) as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename.endswith("/data.pkl"):
                assert old in data
                data = data.replace(old, new)
            target.writestr(info.filename, data)
    return target_path


@pytest.mark.parametrize(("location", "device"), [("cuda:0", "cuda:0"), ("cuda:1", "cuda:1"),
                                                   ("cuda", "cuda:0"), ("mps", "mps")])
@pytest.mark.parametrize("case", ["views", "tied", "model_optimizer"])
def test_device_comes_from_the_storage_location(case: str, location: str, device: str,
                                                tmp_path: Path) -> None:
    build, container, optimizers, _ = CASES[case]
    torch.manual_seed(0)
    path = _rewrite_location(save(build(), tmp_path / "c.pt", "zip"), location)
    manifest = read(path)
    tensors, slots = expected_tensors(torch.load(path, weights_only=True, map_location="cpu"),
                                      container, optimizers)
    compare_with_oracle(manifest, tensors, slots, device=device)


def test_meta_tensors(tmp_path: Path) -> None:
    obj = {"m": torch.empty(3, 4, device="meta"), "t": torch.empty(4, 3, device="meta").t()}
    path = save(obj, tmp_path / "meta.pt", "zip")
    loaded = torch.load(path, weights_only=True)
    manifest = read(path)
    for key, tensor in loaded.items():
        info = manifest[key]
        assert (info.shape, info.stride, info.device) == (tuple(tensor.shape), tensor.stride(),
                                                          "meta")
        assert info.storage is None and info.aliases == ()


def test_sparse_and_quantized_tensors_are_described(tmp_path: Path) -> None:
    dense = torch.tensor([[0.0, 1.5, 0.0], [2.0, 0.0, 0.0]])
    obj = {"coo": dense.to_sparse(), "csr": dense.to_sparse_csr(),
           "q": torch.quantize_per_tensor(torch.ones(4), 0.1, 0, torch.qint8),
           "qc": torch.quantize_per_channel(torch.ones(2, 3), torch.tensor([0.1, 0.2]),
                                            torch.tensor([0, 0]), 0, torch.quint8)}
    path = save(obj, tmp_path / "sparse.pt", "zip")
    loaded = torch.load(path, weights_only=True)
    manifest = read(path)
    for key in ("coo", "csr"):
        assert manifest[key].shape == tuple(loaded[key].shape)
        assert manifest[key].dtype == "float32"
        assert manifest[key].storage is None
        assert manifest.metadata["layouts"][key] == f"sparse_{key}"
    coo = loaded["coo"]
    assert manifest["coo"].nbytes == (coo._indices().numel() * 8 + coo._values().numel() * 4)
    assert manifest["q"].dtype == "other" and manifest["q"].shape == (4,)
    assert manifest["q"].nbytes == 4 and manifest["qc"].shape == (2, 3)


def test_nested_tensors_are_unsupported_not_unsafe(tmp_path: Path) -> None:
    parts = [torch.ones(2), torch.ones(3)]
    for layout, message in ((torch.strided, "nested tensor"), (torch.jagged, "nested jagged")):
        path = save({"n": torch.nested.nested_tensor(parts, layout=layout)}, tmp_path / "n.pt",
                    "zip")
        with pytest.raises(CkptdiffError, match=message) as caught:
            read(path)
        assert not isinstance(caught.value, UnsafeContentError)
        assert caught.value.exit_code == 2


def test_big_endian_byteorder_is_recorded(tmp_path: Path) -> None:
    path = save({"w": torch.ones(2)}, tmp_path / "le.pt", "zip")
    target = tmp_path / "be.pt"
    with zipfile.ZipFile(path) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            big = info.filename.endswith("/byteorder")
            new.writestr(info.filename, b"big" if big else old.read(info))
    assert read(target).metadata["byteorder"] == "big"


def test_header_only_reading_of_a_large_checkpoint(tmp_path: Path) -> None:
    obj = {f"layer{i}.weight": torch.zeros(256, 256) for i in range(16)}
    for fmt in ("zip", "legacy"):
        path = save(obj, tmp_path / f"big_{fmt}.pt", fmt)
        manifest = read(path)
        assert len(manifest) == 16
        assert path.stat().st_size > 4_000_000
        assert manifest.metadata["bytes_read"] < 64 * 1024, fmt


def test_reading_from_bytes_saved_archive_root(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    torch.save({"w": torch.ones(2)}, buffer)
    path = tmp_path / "renamed.bin"
    path.write_bytes(buffer.getvalue())
    manifest = read(path)
    assert manifest["w"].storage == "archive/data/0"
    assert manifest.metadata["byteorder"] == "little"
