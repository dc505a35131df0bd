"""Which framework loads a manifest's format, and how TensorFlow names a checkpoint's objects.

Load semantics differ per framework (torch ``load_state_dict`` casts dtypes, TensorFlow's
``Checkpoint.restore`` refuses them), so notes and ``diff --explain`` need the family of a format.
"""

from __future__ import annotations

from ckptdiff.manifest import Manifest, TensorInfo

TORCH_FORMATS = frozenset({"torch-zip", "torch-legacy", "torch-module", "safetensors",
                           "safetensors-sharded"})
KERAS_FORMATS = frozenset({"keras-h5", "keras-weights-h5", "keras-zip", "keras-model"})
TF_FORMATS = frozenset({"tf-checkpoint", "tf-savedmodel"})
# Formats of other tools: no torch, Keras or TensorFlow loader reads them as they are.
# (TorchScript and torch.export archives are loaded by torch.jit.load / torch.export.load, whose
# state dict a user then loads: no one call ckptdiff can replay, so key parity judges them.)
OTHER_FRAMEWORKS = {"gguf": "llama.cpp", "numpy-npy": "numpy", "numpy-npz": "numpy",
                    "onnx": "onnx", "torchscript": "torch.jit", "torch-export": "torch.export"}

# The suffix TensorFlow appends to a variable's object path in a checkpoint key.
_VARIABLE_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"


def framework_of(manifest: Manifest) -> str | None:
    """``torch``, ``keras`` or ``tensorflow`` for the manifest's format (``llama.cpp``,
    ``numpy``, ``onnx`` for those tools' files); None when unknown."""
    if manifest.format in TORCH_FORMATS:
        return "torch"
    if manifest.format in KERAS_FORMATS:
        return "keras"
    if manifest.format in TF_FORMATS:
        return "tensorflow"
    return OTHER_FRAMEWORKS.get(manifest.format)


def tf_object_path(info: TensorInfo) -> str | None:
    """The path TensorFlow prints for a checkpoint object (``(root).optimizer._variables.6``).

    TensorFlow names an object by its shortest path, which is the raw checkpoint key the TF
    readers keep among the tensor's ``aliases``; local names in keys are escaped (``.`` as
    ``..``, ``/`` as ``.S``) and printed unescaped.
    """
    raw = next((name for name in (info.key, *info.aliases) if name.endswith(_VARIABLE_SUFFIX)),
               None)
    if raw is None:
        return None
    parts = [_unescape(part) for part in raw.removesuffix(_VARIABLE_SUFFIX).split("/")]
    return ".".join(("(root)", *parts))


def _unescape(local_name: str) -> str:
    out: list[str] = []
    index = 0
    while index < len(local_name):
        char = local_name[index]
        if char == "." and index + 1 < len(local_name):
            following = local_name[index + 1]
            out.append("/" if following == "S" else following)
            index += 2
            continue
        out.append(char)
        index += 1
    return "".join(out)
