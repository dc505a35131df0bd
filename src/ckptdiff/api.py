"""The public Python API: read a checkpoint, diff two things, snapshot a model.

Sources and targets may be checkpoint paths, manifests, live models (torch ``nn.Module``, Keras
models), or model specs (``package.module:attr``, ``file.py:attr``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ckptdiff import readers
from ckptdiff.manifest import Manifest

if TYPE_CHECKING:  # annotations only: ``inspect`` never builds a Report
    from ckptdiff.diffing.report import Report

Source = str | os.PathLike[str] | Manifest | Any


def read(path: str | os.PathLike[str], key: str | None = None) -> Manifest:
    """The manifest of the checkpoint at ``path`` (headers only; the format is sniffed).

    ``key`` picks the entry of a container checkpoint (``state_dict``, ``ema``, …).
    """
    return readers.read(path, key)


def resolve(obj: Source, *, key: str | None = None,
            model_kwargs: Mapping[str, Any] | None = None,
            against: Manifest | None = None) -> Manifest:
    """Turn any accepted source/target into a manifest: a path, a manifest, a model spec
    (``package.module:attr``, ``file.py:attr``) or a live model. ``against``: the checkpoint
    a live model will be compared with, whose loader's key space the model then uses."""
    from ckptdiff.targets.resolve import resolve as resolve_target

    return resolve_target(obj, key=key, model_kwargs=model_kwargs, against=against)


def diff(
    source: Source,
    target: Source,
    *,
    key: str | None = None,
    target_key: str | None = None,
    model_kwargs: Mapping[str, Any] | None = None,
    ignore: Iterable[str] = (),
    loader: str | None = None,
) -> Report:
    """Why ``source`` (a checkpoint) would or would not load into ``target``.

    ``ignore`` holds glob patterns of keys whose findings are dropped (e.g. ``classifier.*``);
    ``loader`` names the judging loader (None: the pair's default; ``report.verdicts`` lists
    the loaders that apply).
    """
    # Imported here: ``inspect`` never needs the matcher and its rename engine.
    from ckptdiff.diffing.compare import diff as run_diff

    return run_diff(source, target, key=key, target_key=target_key, model_kwargs=model_kwargs,
                    ignore=ignore, loader=loader)


def snapshot(target: Source, *, key: str | None = None,
             model_kwargs: Mapping[str, Any] | None = None) -> Manifest:
    """A deterministic manifest (tensors sorted by key) to commit and diff against later."""
    from ckptdiff.targets.resolve import snapshot as snapshot_target

    return snapshot_target(target, key=key, model_kwargs=model_kwargs)


def remap(source: str | os.PathLike[str], target: Source, output: str | os.PathLike[str],
          **options: Any) -> Any:
    """Write ``source`` renamed (and reordered) to fit ``target``; see :mod:`ckptdiff.fix.remap`.

    Returns a :class:`ckptdiff.fix.remap.RemapResult` whose ``report`` diffs the written file
    against ``target``.
    """
    from ckptdiff.fix.remap import remap as run_remap

    return run_remap(source, target, output, **options)


def load_state_dict(model: Any, path: str | os.PathLike[str], strict: bool = True,
                    **options: Any) -> Report:
    """Load ``path`` into a torch ``model`` with confident renames applied; see
    :mod:`ckptdiff.fix.loading`. Raises :class:`IncompatibleError` when it still does not fit."""
    from ckptdiff.fix.loading import load_state_dict as run_load

    return run_load(model, path, strict, **options)
