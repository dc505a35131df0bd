"""The ``from_pretrained(..., gguf_file=...)`` judge: a GGUF against a live transformers
``PreTrainedModel``, decided from transformers' and gguf's own tables where that is possible.

What ``modeling_gguf_pytorch_utils.load_gguf_checkpoint`` does, read from transformers: it raises
for an architecture outside ``GGUF_SUPPORTED_ARCHITECTURES`` (llama files whose ``general.name``
says mistral count as ``mistral``); it builds the config from the GGUF's own metadata (so a shape
that differs from the target's means it builds another model), sets ``tie_word_embeddings`` when
the file has no ``output.weight``; it names each GGUF tensor through the reverse of gguf's
``TensorNameMap`` for the model's keys (the map the converter names by, so the GGUF key space of
the diff is its key space) and skips tensors that map to no key; ``gguf.dequantize`` turns every
tensor to float32 and raises on a type it cannot dequantize. ``from_pretrained`` then leaves a
model key nothing filled as initialized (it warns, it does not raise): the contract calls that
not loading.

Decided only where those steps are the whole story: the architecture's tensor processor renames
nothing (transformers' base or Llama processor, which only undoes the q/k permutation), the file
holds no experts (a llama-architecture Mixtral GGUF builds a dense config), and the target's
``model_type`` is the one the GGUF's config gets. Elsewhere no judge applies and key parity
judges, as before.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from ckptdiff.dtypes import GGML_TYPES
from ckptdiff.loaders.common import listed
from ckptdiff.loaders.verdict import Judgement, KeyCall, Verdict, count_phrase
from ckptdiff.manifest import Manifest

NAME = "from_pretrained-gguf"
CALL = "transformers.PreTrainedModel.from_pretrained(path, gguf_file=...)"
_GGML_CODES = {name: code for code, name in GGML_TYPES.items()}
_RENAMED_IN_GGUF = "gguf_names"  # targets.gguf_names.MARKER: the target is in GGUF names


def gguf_pretrained_judge(source: Manifest, target: Manifest) -> Judgement | None:
    """The judgement of ``from_pretrained(gguf_file=...)``, or None where it cannot be decided
    (or does not apply: not a GGUF source against a live ``PreTrainedModel`` in GGUF names)."""
    facts = target.metadata.get("transformers")
    if (source.format != "gguf" or not isinstance(facts, dict)
            or _RENAMED_IN_GGUF not in target.metadata):
        return None
    try:
        from transformers import modeling_gguf_pytorch_utils as gguf_utils
    except ImportError:
        return None  # a PreTrainedModel target means transformers is there; nothing to judge
    values: dict[str, Any] = source.metadata.get("gguf", {}).get("kv", {})
    architecture = str(values.get("general.architecture", ""))
    name = str(values.get("general.name", ""))
    updated = "mistral" if "llama" in architecture and "mistral" in name else architecture
    supported = gguf_utils.GGUF_SUPPORTED_ARCHITECTURES
    if architecture not in supported and updated not in supported:
        return _judgement(False, f"transformers raises \"GGUF model with architecture "
                                 f"{architecture} is not supported yet\"", ())
    processor = gguf_utils.TENSOR_PROCESSORS.get(architecture, gguf_utils.TensorProcessor)
    if processor not in (gguf_utils.TensorProcessor, gguf_utils.LlamaTensorProcessor):
        return None
    if f"{architecture}.expert_count" in values or facts.get("model_type") != updated:
        return None
    built = _built_by_from_pretrained(source, target, gguf_utils)
    if built is None:
        return None
    return _judge_keys(source, target, _differences(built, target))


def _built_by_from_pretrained(source: Manifest, target: Manifest, gguf_utils: Any
                              ) -> Manifest | None:
    """The model ``from_pretrained`` builds, in GGUF names: the target's class from the config
    ``load_gguf_checkpoint`` parses out of the file (metadata only; its reader maps the file and
    reads no tensor), on the meta device. None for a file not on this machine."""
    path = Path(source.path)
    if not path.is_file():
        return None
    import torch

    from ckptdiff.targets.gguf_names import to_gguf_names
    from ckptdiff.targets.resolve import resolve

    facts = target.metadata["transformers"]
    module_name, _, qualname = str(facts["class"]).partition(":")
    cls: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        cls = getattr(cls, part)
    try:
        parsed = gguf_utils.load_gguf_checkpoint(str(path), return_tensors=False)
        config = cls.config_class.from_dict(parsed["config"])
        with torch.device("meta"):
            model = cls(config)
    except Exception:  # transformers or the model class may raise anything on odd metadata
        return None  # then nothing here is decided: key parity judges, as without this judge
    renaming = target.metadata[_RENAMED_IN_GGUF]
    return to_gguf_names(resolve(model), renaming["architecture"], renaming["block_count"],
                         hf_architecture=renaming.get("hf_architecture"))


def _differences(built: Manifest, target: Manifest) -> list[str]:
    """Keys whose presence or shape differ between the built model and the target."""
    keys = dict.fromkeys((*target.by_key, *built.by_key))
    return [key for key in keys if key not in built.by_key or key not in target.by_key
            or built.by_key[key].shape != target.by_key[key].shape]


def _judge_keys(source: Manifest, target: Manifest, other_model: list[str]) -> Judgement:
    stored, expected = source.by_key, target.by_key
    calls: dict[str, KeyCall] = {}
    for key in stored:
        if key not in expected:
            calls[key] = KeyCall(True, "from_pretrained(gguf_file=...) skips a GGUF tensor no "
                                       "model key maps to")
    missing = [key for key in expected if key not in stored]
    if "output.weight" in missing and "token_embd.weight" in stored:
        missing.remove("output.weight")
        calls["output.weight"] = KeyCall(True, (
            "the GGUF has no output.weight, so transformers sets tie_word_embeddings and the "
            "head shares token_embd.weight"), "token_embd.weight")
    shape = [key for key in expected if key in stored and stored[key].shape != expected[key].shape]
    refused = _not_dequantizable(source)
    loads = not (missing or shape or refused or other_model)
    parts = []
    if other_model:
        parts.append(f"from_pretrained builds the model from the GGUF's metadata, and that "
                     f"model is not this one ({count_phrase(len(other_model), 'key')} differ: "
                     f"{listed(other_model, 3)})")
    if refused:
        parts.append(f"gguf.dequantize raises on {listed(sorted(refused), 3)} "
                     f"({listed(sorted({stored[k].dtype for k in refused}), 3)})")
    if missing:
        parts.append(f"{count_phrase(len(missing), 'model key')} no GGUF tensor fills "
                     f"({listed(missing, 3)}): from_pretrained leaves them as initialized")
    if shape:
        parts.append(f"{count_phrase(len(shape), 'shape')} differ ({listed(shape, 3)}): "
                     "from_pretrained builds the model from the GGUF's config, not this one")
    reason = "; ".join(parts) if parts else "every model tensor is filled from the GGUF"
    keys = dict.fromkeys((*missing, *shape, *sorted(refused), *other_model))
    return _judgement(loads, reason, tuple(keys), calls)


def _judgement(loads: bool, reason: str, keys: tuple[str, ...],
               calls: dict[str, KeyCall] | None = None) -> Judgement:
    verdict = Verdict(NAME, CALL, "transformers", loads, reason, keys)
    return Judgement(verdict, calls or {}, decides_keys=True)


def _not_dequantizable(source: Manifest) -> set[str]:
    """GGUF tensors whose type ``gguf.dequantize`` refuses, tried on one zeroed block of it."""
    import gguf
    import numpy as np

    dequantizes: dict[str, bool] = {}
    for dtype in {info.dtype for info in source.tensors}:
        qtype = gguf.GGMLQuantizationType(_GGML_CODES[dtype])
        block_bytes = gguf.GGML_QUANT_SIZES[qtype][1]
        try:
            gguf.dequantize(np.zeros(block_bytes, dtype=np.uint8), qtype)
        except NotImplementedError:
            dequantizes[dtype] = False
        else:
            dequantizes[dtype] = True
    return {info.key for info in source.tensors if not dequantizes[info.dtype]}
