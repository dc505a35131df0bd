"""GGUF and Hugging Face names in one key space: a Hugging Face checkpoint or live transformers
model renamed to the GGUF names llama.cpp's converter gives its tensors.

``convert_hf_to_gguf.py`` drops a few tensors llama.cpp recomputes (names ending in
``.attention.masked_bias``, ``.attention.bias``, ``.rotary_emb.inv_freq``), then names every other
one with ``TensorNameMap.get_name(name, try_suffixes=(".weight", ".bias"))`` for the file's
architecture and block count, and stops with ``Can not map tensor '…'`` where that finds none.
For ``llama`` its ``LlamaModel.modify_tensors`` first fixes prefixes, skips vision tensors and
stacks Mixtral experts (:mod:`ckptdiff.targets.gguf_convert`); its ``generate_extra_tensors``
adds tensors computed from the config (``rope_freqs.weight``), listed as ``generated``.
This module does the same with the same map (the optional ``gguf`` package, llama.cpp's own
library), so a GGUF diffs against the model it came from key by key: a tensor the converter
cannot name keeps its Hugging Face key (and is reported as such), the Hugging Face name of every
renamed one stays beside it (``variable_name``). Shapes need no change: the converter permutes the
rows of Llama's q/k projections but keeps their shape, and the GGUF reader already puts ggml's
reversed dimensions back in the order transformers uses.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ckptdiff.errors import MissingDependencyError, UsageError
from ckptdiff.manifest import Manifest, TensorInfo
from ckptdiff.targets.gguf_convert import Prepared, prepare_llama

# What the converter skips before naming anything (ModelBase.prepare_tensors).
SKIPPED_SUFFIXES = (".attention.masked_bias", ".attention.bias", ".rotary_emb.inv_freq")
TRY_SUFFIXES = (".weight", ".bias")
MARKER = "gguf_names"  # metadata key of a renamed manifest
# Tensors generate_extra_tensors() computes from the config (gguf.MODEL_TENSOR member names).
GENERATED = ("ROPE_FREQS", "ROPE_FACTORS_LONG", "ROPE_FACTORS_SHORT")


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
    experts = facts.get("kv", {}).get(f"{architecture}.expert_count")
    renamed = to_gguf_names(other, architecture, blocks,
                            expert_count=experts if isinstance(experts, int) else None,
                            hf_architecture=hf_architecture(other))
    return (gguf_side, renamed) if source is gguf_side else (renamed, gguf_side)


def hf_architecture(manifest: Manifest) -> str | None:
    """The transformers class the converter would read from ``config.json``'s
    ``architectures``: a live model's class, else the ``config.json`` beside a local file."""
    facts = manifest.metadata.get("transformers")
    if isinstance(facts, dict) and isinstance(facts.get("class"), str):
        return str(facts["class"]).rsplit(":", 1)[-1].rsplit(".", 1)[-1]
    where = Path(manifest.path)
    config = where / "config.json" if where.is_dir() else where.parent / "config.json"
    try:
        architectures = json.loads(config.read_text(encoding="utf-8")).get("architectures")
    except (OSError, ValueError, AttributeError):
        return None  # no readable config: the converter could not run; the keys decide alone
    if isinstance(architectures, list) and architectures and isinstance(architectures[0], str):
        return architectures[0]
    return None


def to_gguf_names(manifest: Manifest, architecture: str, block_count: int, *,
                  expert_count: int | None = None,
                  hf_architecture: str | None = None) -> Manifest:
    """``manifest`` (Hugging Face keys) under the names ``convert_hf_to_gguf.py`` would write:
    for ``llama`` after its ``LlamaModel`` prefix and expert handling (``targets.gguf_convert``),
    then ``TensorNameMap.get_name``. Tensors it would not write keep their Hugging Face keys;
    ``metadata["gguf_names"]`` says why for each."""
    name_map = _tensor_name_map(architecture, block_count)
    skipped = [info.key for info in manifest.tensors if info.key.endswith(SKIPPED_SUFFIXES)]
    kept = [info for info in manifest.tensors if not info.key.endswith(SKIPPED_SUFFIXES)]
    vision: list[str] = []
    unprocessed: list[str] = []
    if architecture == "llama":
        prepared, vision, unprocessed = prepare_llama(kept, hf_architecture, expert_count)
    else:
        prepared = [Prepared(info.key, info, (info.key,)) for info in kept]
    renames = {p.sources[0]: new for p in prepared if len(p.sources) == 1
               and (new := name_map.get_name(p.name, try_suffixes=TRY_SUFFIXES))}
    tensors: dict[str, TensorInfo] = {}
    unmapped: list[str] = []
    duplicates: list[str] = []  # a second tensor under a name taken: GGUFWriter refuses it
    for item in prepared:
        new = name_map.get_name(item.name, try_suffixes=TRY_SUFFIXES)
        if new is not None and new not in tensors:
            tensors[new] = replace(item.info, key=new,
                                   variable_name=item.info.variable_name or item.info.key,
                                   aliases=tuple(renames.get(a, a) for a in item.info.aliases))
            continue
        (unmapped if new is None else duplicates).extend(item.sources)
        tensors.update((key, manifest.by_key[key]) for key in item.sources)
    tensors.update((key, manifest.by_key[key]) for key in (*vision, *unprocessed))
    facts = {"architecture": architecture, "block_count": block_count,
             "hf_architecture": hf_architecture,
             "mapped": len(tensors) - len(set(unmapped) | set(duplicates) | set(vision)
                                          | set(unprocessed)),
             "unmapped": list(dict.fromkeys(unmapped)), "skipped": skipped,
             "duplicates": list(dict.fromkeys(duplicates)), "vision": vision,
             "unprocessed_experts": unprocessed, "generated": _generated(architecture)}
    return replace(manifest, tensors=tuple(tensors.values()),
                   metadata={**manifest.metadata, MARKER: facts})


def unmapped_note(key: str, facts: dict[str, Any]) -> str:
    """What a finding about a tensor the converter would not write under a GGUF name says."""
    if key in facts.get("vision", ()):
        return ("convert_hf_to_gguf.py skips vision tensors here: with --mmproj it writes them "
                "to a separate GGUF")
    if key in facts.get("unprocessed_experts", ()):
        return ("convert_hf_to_gguf.py stacks a block's experts only when all of them (w1, w2, "
                "w3 of each) are there: it stops with \"Unprocessed experts: [...]\"")
    return (f"convert_hf_to_gguf.py has no GGUF name for it ({facts['architecture']}, "
            f"{facts['block_count']} blocks): it stops with \"Can not map tensor {key!r}\"")


def unmapped_keys(manifests: Sequence[Manifest]) -> dict[str, dict[str, Any]]:
    """Keys the converter would not write under a GGUF name (unmapped, vision, experts it never
    stacks), each with the facts of the renaming that found them."""
    found: dict[str, dict[str, Any]] = {}
    for manifest in manifests:
        facts = manifest.metadata.get(MARKER)
        if isinstance(facts, dict):
            for reason in ("unmapped", "vision", "unprocessed_experts"):
                found.update(dict.fromkeys(facts.get(reason, ()), facts))
    return found


def generated_keys(manifests: Sequence[Manifest]) -> set[str]:
    """GGUF tensors the converter computes from the config rather than copies (``rope_freqs``
    of llama3 rope scaling, Phi-3's ``rope_factors_long``/``_short``): no Hugging Face
    checkpoint or model holds them."""
    found: set[str] = set()
    for manifest in manifests:
        facts = manifest.metadata.get(MARKER)
        if isinstance(facts, dict):
            found.update(facts.get("generated", ()))
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


def _generated(architecture: str) -> list[str]:
    import gguf

    by_name = {name: arch for arch, name in gguf.MODEL_ARCH_NAMES.items()}
    known = gguf.MODEL_TENSORS.get(by_name[architecture], ())
    tensors = [gguf.MODEL_TENSOR[member] for member in GENERATED]
    return [f"{gguf.TENSOR_NAMES[tensor]}.weight" for tensor in tensors if tensor in known]
