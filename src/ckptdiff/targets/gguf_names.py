"""GGUF and Hugging Face names in one key space: a Hugging Face checkpoint or live transformers
model renamed to the GGUF names llama.cpp's converter gives its tensors.

``convert_hf_to_gguf.py`` drops a few tensors llama.cpp recomputes (names ending in
``.attention.masked_bias``, ``.attention.bias``, ``.rotary_emb.inv_freq``), then names every other
one with ``TensorNameMap.get_name(name, try_suffixes=(".weight", ".bias"))`` for the file's
architecture and block count, and stops with ``Can not map tensor '…'`` where that finds none.
This module does the same with the same map (the optional ``gguf`` package, llama.cpp's own
library), so a GGUF diffs against the model it came from key by key: a tensor the converter
cannot name keeps its Hugging Face key (and is reported as such), the Hugging Face name of every
renamed one stays beside it (``variable_name``). Shapes need no change: the converter permutes the
rows of Llama's q/k projections but keeps their shape, and the GGUF reader already puts ggml's
reversed dimensions back in the order transformers uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from ckptdiff.errors import MissingDependencyError, UsageError
from ckptdiff.manifest import Manifest, TensorInfo

# What the converter skips before naming anything (ModelBase.prepare_tensors).
SKIPPED_SUFFIXES = (".attention.masked_bias", ".attention.bias", ".rotary_emb.inv_freq")
TRY_SUFFIXES = (".weight", ".bias")
MARKER = "gguf_names"  # metadata key of a renamed manifest


def in_gguf_key_space(source: Manifest, target: Manifest) -> tuple[Manifest, Manifest]:
    """``source`` and ``target`` with the Hugging Face side renamed to GGUF names, when exactly
    one side is a GGUF file and the other shares none of its keys; otherwise both unchanged."""
    if (source.format == "gguf") == (target.format == "gguf"):
        return source, target
    gguf_side, other = (source, target) if source.format == "gguf" else (target, source)
    if MARKER in other.metadata or set(other.by_key) & set(gguf_side.by_key):
        return source, target
    facts = gguf_side.metadata.get("gguf", {})
    architecture, blocks = facts.get("architecture"), facts.get("block_count")
    if not isinstance(architecture, str) or not isinstance(blocks, int):
        raise UsageError(f"{gguf_side.path}: the GGUF names no general.architecture and block "
                         "count, so its names cannot be matched with Hugging Face ones")
    renamed = to_gguf_names(other, architecture, blocks)
    return (gguf_side, renamed) if source is gguf_side else (renamed, gguf_side)


def to_gguf_names(manifest: Manifest, architecture: str, block_count: int) -> Manifest:
    """``manifest`` (Hugging Face keys) under the names ``convert_hf_to_gguf.py`` would write."""
    name_map = _tensor_name_map(architecture, block_count)
    renames: dict[str, str] = {}
    unmapped: list[str] = []
    skipped: list[str] = []
    duplicates: list[str] = []  # a second tensor under a name taken: GGUFWriter refuses it
    for info in manifest.tensors:
        if info.key.endswith(SKIPPED_SUFFIXES):
            skipped.append(info.key)
            continue
        new = name_map.get_name(info.key, try_suffixes=TRY_SUFFIXES)
        if new is None:
            unmapped.append(info.key)
        elif new in renames.values():
            duplicates.append(info.key)
        else:
            renames[info.key] = new
    dropped = set(skipped)
    tensors = tuple(_renamed(info, renames) for info in manifest.tensors
                    if info.key not in dropped)
    facts = {"architecture": architecture, "block_count": block_count, "mapped": len(renames),
             "unmapped": unmapped, "skipped": skipped, "duplicates": duplicates}
    return replace(manifest, tensors=tensors, metadata={**manifest.metadata, MARKER: facts})


def unmapped_note(key: str, facts: dict[str, Any]) -> str:
    """What a finding about a tensor the converter cannot name says."""
    return (f"convert_hf_to_gguf.py has no GGUF name for it ({facts['architecture']}, "
            f"{facts['block_count']} blocks): it stops with \"Can not map tensor {key!r}\"")


def unmapped_keys(manifests: Sequence[Manifest]) -> dict[str, dict[str, Any]]:
    """Keys the converter cannot name, each with the facts of the renaming that found them."""
    found: dict[str, dict[str, Any]] = {}
    for manifest in manifests:
        facts = manifest.metadata.get(MARKER)
        if isinstance(facts, dict):
            found.update(dict.fromkeys(facts.get("unmapped", ()), facts))
    return found


def _renamed(info: TensorInfo, renames: dict[str, str]) -> TensorInfo:
    if info.key not in renames:
        return info
    return replace(info, key=renames[info.key], variable_name=info.variable_name or info.key,
                   aliases=tuple(renames.get(alias, alias) for alias in info.aliases))


def _tensor_name_map(architecture: str, block_count: int) -> Any:
    try:
        import gguf
    except ImportError:
        raise MissingDependencyError("gguf", "gguf", "matching GGUF names with Hugging Face "
                                     "names") from None
    by_name = {name: arch for arch, name in gguf.MODEL_ARCH_NAMES.items()}
    if architecture not in by_name:
        raise UsageError(f"the gguf package knows no architecture {architecture!r}, so its "
                         "tensor names cannot be matched with Hugging Face ones")
    return gguf.get_tensor_name_map(by_name[architecture], block_count)
