"""Small builders shared by tests."""

from __future__ import annotations

from ckptdiff.manifest import Manifest, TensorInfo
from ckptdiff.rename.plan import RenamePlan, plan_renames


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


def plan(source: list[TensorInfo], target: list[TensorInfo]) -> RenamePlan:
    """The rename engine on the keys each side lacks, with both sides whole (as a diff runs it)."""
    target_keys = {x.key for x in target}
    source_keys = {x.key for x in source}
    return plan_renames([x for x in source if x.key not in target_keys],
                        [x for x in target if x.key not in source_keys],
                        source_all=source, target_all=target)
