"""Small builders shared by tests."""

from __future__ import annotations

from ckptdiff.manifest import Manifest, TensorInfo


def manifest(*tensors: TensorInfo, fmt: str = "test", live: bool = False,
             path: str = "m", **metadata: object) -> Manifest:
    """A manifest of ``tensors``; ``live`` marks it as a live model's expectations."""
    meta: dict[str, object] = dict(metadata)
    if live:
        meta["live_model"] = True
    return Manifest(path=path, format=fmt, tensors=tuple(tensors), metadata=meta)


def t(key: str, *shape: int, dtype: str = "float32", **fields: object) -> TensorInfo:
    """A tensor ``key`` of ``shape``."""
    return TensorInfo(key=key, shape=tuple(shape), dtype=dtype, **fields)  # type: ignore[arg-type]
