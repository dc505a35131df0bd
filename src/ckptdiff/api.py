"""The public Python API: read a checkpoint, diff two things, snapshot a model.

Sources and targets may be checkpoint paths, manifests, live models (torch ``nn.Module``, Keras
models), or model specs (``package.module:attr``, ``file.py:attr``).
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ckptdiff import readers
from ckptdiff.errors import CkptdiffError
from ckptdiff.manifest import Manifest
from ckptdiff.targets.spec import import_spec, is_model_spec

if TYPE_CHECKING:  # annotations only: ``inspect`` never builds a Report
    from ckptdiff.report import Report

Source = str | os.PathLike[str] | Manifest | Any


def read(path: str | os.PathLike[str], key: str | None = None) -> Manifest:
    """The manifest of the checkpoint at ``path`` (headers only; the format is sniffed).

    ``key`` picks the entry of a container checkpoint (``state_dict``, ``ema``, …).
    """
    try:
        return readers.read(path, key)
    except OSError as exc:
        raise CkptdiffError(f"{path}: {exc.strerror or exc}") from None


def resolve(obj: Source, *, key: str | None = None,
            model_kwargs: Mapping[str, Any] | None = None) -> Manifest:
    """Turn any accepted source/target into a manifest."""
    if isinstance(obj, Manifest):
        return obj
    if isinstance(obj, (str, os.PathLike)):
        text = os.fspath(obj)
        if is_model_spec(text) and not text.startswith("hf:"):  # hf:gpt2 is a cached model
            from ckptdiff.targets.resolve import model_manifest

            return model_manifest(import_spec(text), text, model_kwargs)
        return read(text, key)
    from ckptdiff.targets.resolve import model_manifest

    if isinstance(obj, type) or callable(obj) and hasattr(obj, "__qualname__"):
        label = f"{getattr(obj, '__module__', '?')}.{obj.__qualname__}"
    else:
        label = f"<{type(obj).__name__} instance>"
    return model_manifest(obj, label, model_kwargs)


def diff(
    source: Source,
    target: Source,
    *,
    key: str | None = None,
    target_key: str | None = None,
    model_kwargs: Mapping[str, Any] | None = None,
    ignore: Iterable[str] = (),
) -> Report:
    """Why ``source`` (a checkpoint) would or would not load into ``target``.

    ``ignore`` holds glob patterns of keys whose findings are dropped (e.g. ``classifier.*``).
    """
    # Imported here: ``inspect`` never needs the matcher and its rename engine.
    from ckptdiff.match import diff_manifests

    report = diff_manifests(
        resolve(source, key=key),
        resolve(target, key=target_key, model_kwargs=model_kwargs),
    )
    return apply_ignore(report, ignore)


def apply_ignore(report: Report, patterns: Iterable[str]) -> Report:
    """The report without findings (and suggestions) whose key matches one of ``patterns``."""
    globs = tuple(patterns)
    if not globs:
        return report

    def ignored(key: str) -> bool:
        return any(fnmatch.fnmatchcase(key, glob) for glob in globs)

    return replace(
        report,
        findings=tuple(f for f in report.findings if not ignored(f.key)),
        suggestions=tuple(s for s in report.suggestions
                          if not (ignored(s.source_key) or ignored(s.target_key))),
        unpaired=tuple(u for u in report.unpaired
                       if not ignored(u.source_key or u.target_key or "")),
    )


def snapshot(target: Source, *, key: str | None = None,
             model_kwargs: Mapping[str, Any] | None = None) -> Manifest:
    """A deterministic manifest (tensors sorted by key) to commit and diff against later."""
    manifest = resolve(target, key=key, model_kwargs=model_kwargs)
    return replace(manifest, tensors=tuple(sorted(manifest.tensors, key=lambda t: t.key)))


def remap(source: str | os.PathLike[str], target: Source, output: str | os.PathLike[str],
          **options: Any) -> Any:
    """Write ``source`` renamed (and reordered) to fit ``target``; see :mod:`ckptdiff.remapping`.

    Returns a :class:`ckptdiff.remapping.RemapResult` whose ``report`` diffs the written file
    against ``target``.
    """
    from ckptdiff.remapping import remap as run_remap

    return run_remap(source, target, output, **options)


def load_state_dict(model: Any, path: str | os.PathLike[str], strict: bool = True,
                    **options: Any) -> Report:
    """Load ``path`` into a torch ``model`` with confident renames applied; see
    :mod:`ckptdiff.loading`. Raises :class:`IncompatibleError` when it still does not fit."""
    from ckptdiff.loading import load_state_dict as run_load

    return run_load(model, path, strict, **options)
