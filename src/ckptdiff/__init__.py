"""ckptdiff: why a checkpoint will not load into a model, from headers only."""

from ckptdiff.errors import CkptdiffError
from ckptdiff.manifest import Manifest, TensorInfo

__version__ = "0.1.0"

__all__ = ["CkptdiffError", "Manifest", "TensorInfo", "__version__"]
