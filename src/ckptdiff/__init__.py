"""ckptdiff: why a checkpoint will not load into a model, from headers only.

>>> import ckptdiff
>>> report = ckptdiff.diff("finetuned.pth", model)      # doctest: +SKIP
>>> report.compatible, report.summary                    # doctest: +SKIP

Public names are imported on first use (PEP 562), so ``ckptdiff inspect`` pays only for what
reading a checkpoint needs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "diff": "ckptdiff.api", "load_state_dict": "ckptdiff.api", "read": "ckptdiff.api",
    "remap": "ckptdiff.api", "resolve": "ckptdiff.api", "snapshot": "ckptdiff.api",
    "CkptdiffError": "ckptdiff.errors", "CorruptFileError": "ckptdiff.errors",
    "IncompatibleError": "ckptdiff.errors", "MissingDependencyError": "ckptdiff.errors",
    "UnknownFormatError": "ckptdiff.errors", "UnsafeContentError": "ckptdiff.errors",
    "UsageError": "ckptdiff.errors",
    "Manifest": "ckptdiff.manifest", "TensorInfo": "ckptdiff.manifest",
    "Finding": "ckptdiff.diffing.report", "Report": "ckptdiff.diffing.report",
    "Rule": "ckptdiff.rename.results", "Suggestion": "ckptdiff.rename.results",
    "Unpaired": "ckptdiff.rename.results",
}

__all__ = [
    "CkptdiffError", "CorruptFileError", "Finding", "IncompatibleError", "Manifest",
    "MissingDependencyError", "Report", "Rule", "Suggestion", "TensorInfo", "UnknownFormatError",
    "UnsafeContentError", "Unpaired", "UsageError", "__version__", "diff", "load_state_dict",
    "read", "remap", "resolve", "snapshot",
]

if TYPE_CHECKING:
    from ckptdiff.api import diff, load_state_dict, read, remap, resolve, snapshot
    from ckptdiff.diffing.report import Finding, Report, Rule, Suggestion, Unpaired
    from ckptdiff.errors import (
        CkptdiffError,
        CorruptFileError,
        IncompatibleError,
        MissingDependencyError,
        UnknownFormatError,
        UnsafeContentError,
        UsageError,
    )
    from ckptdiff.manifest import Manifest, TensorInfo


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ckptdiff' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return list(__all__)
