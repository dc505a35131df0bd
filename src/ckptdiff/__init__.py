"""ckptdiff: why a checkpoint will not load into a model, from headers only.

>>> import ckptdiff
>>> report = ckptdiff.diff("finetuned.pth", model)      # doctest: +SKIP
>>> report.compatible, report.summary                    # doctest: +SKIP
"""

from ckptdiff.api import diff, load_state_dict, read, remap, resolve, snapshot
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
from ckptdiff.report import Finding, Report, Rule, Suggestion, Unpaired

__version__ = "0.1.0"

__all__ = [
    "CkptdiffError", "CorruptFileError", "Finding", "IncompatibleError", "Manifest",
    "MissingDependencyError", "Report", "Rule", "Suggestion", "TensorInfo", "UnknownFormatError",
    "UnsafeContentError", "Unpaired", "UsageError", "__version__", "diff", "load_state_dict",
    "read", "remap", "resolve", "snapshot",
]
