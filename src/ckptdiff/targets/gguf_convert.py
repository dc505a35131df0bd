"""What ``convert_hf_to_gguf.py``'s ``LlamaModel`` (GGUF architecture ``llama``: Llama, Mistral,
Mixtral, the text half of Llava-style models) does to Hugging Face tensors before it names them.

Its ``modify_tensors`` hands the name map something other than the checkpoint key in three cases,
replayed here on headers (no weight is read):
- prefixes: a headless ``LlamaModel`` checkpoint gets ``model.`` put in front; ``model.text_model.``
  (SmolVLM) and a leading ``language_model.`` lose ``text_model.`` / ``language_model.``; vision
  tensors (``vision_tower``, ``vision_model``, ``model.connector``, ``multi_modal_projector``) are
  skipped, because ``--mmproj`` writes them to a separate GGUF;
- experts: the ``block_sparse_moe.experts.{x}.w{1,2,3}.weight`` of one block are stacked into one
  ``[n_experts, …]`` tensor named ``layers.{b}.feed_forward.experts.w{1,2,3}.weight`` (gate, down,
  up), only once all ``n_experts × 3`` of the block are there; otherwise the converter ends with
  ``Unprocessed experts: […]``;
- a live transformers (v5) Mixtral holds those experts fused as ``mlp.experts.gate_up_proj``
  ``[E, 2I, H]`` and ``mlp.experts.down_proj`` ``[E, H, I]``, the layout its loading conversion
  builds from the hub files (w1 and w3 concatenated along dim 1, in that order); its
  ``save_pretrained`` writes them back as the per-expert files above, which is what the converter
  reads, so the fused tensors are split the same way here.
Hand-rolled because the converter is a script, not a library: ``gguf`` ships its name tables,
which :mod:`ckptdiff.targets.gguf_names` uses, not this logic.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from ckptdiff.manifest import TensorInfo

VISION_MARKERS = ("vision_tower", "vision_model", "model.connector", "multi_modal_projector")
_HUB_EXPERT = re.compile(
    r"model\.layers\.(\d+)\.block_sparse_moe\.experts\.(\d+)\.(w[123])\.weight")
_FUSED_EXPERT = re.compile(r"model\.layers\.(\d+)\.mlp\.experts\.(gate_up_proj|down_proj)")


@dataclass(frozen=True)
class Prepared:
    """One tensor as the converter hands it to ``TensorNameMap``: the name it looks up and the
    tensor it writes (shape as transformers orders it), with the Hugging Face keys it came from."""

    name: str
    info: TensorInfo
    sources: tuple[str, ...]


def prepare_llama(tensors: Sequence[TensorInfo], hf_architecture: str | None,
                  expert_count: int | None) -> tuple[list[Prepared], list[str], list[str]]:
    """The tensors ``LlamaModel.modify_tensors`` passes on, in order; the vision keys it skips;
    the expert keys it never merges. ``expert_count``: the GGUF's ``llama.expert_count`` (None:
    counted from the keys, as ``num_local_experts`` would say)."""
    prepared: list[Prepared] = []
    vision: list[str] = []
    experts: dict[int, dict[str, TensorInfo]] = {}
    for info in tensors:
        if any(marker in info.key for marker in VISION_MARKERS):
            vision.append(info.key)
            continue
        name = _unprefixed(info.key, hf_architecture)
        hub = _HUB_EXPERT.fullmatch(name)
        fused = _FUSED_EXPERT.fullmatch(name) if len(info.shape) == 3 else None
        if hub:
            experts.setdefault(int(hub.group(1)), {})[name] = info
        elif fused:
            prepared.extend(_split_fused(info, int(fused.group(1)), fused.group(2)))
        else:
            prepared.append(Prepared(name, info, (info.key,)))
    unprocessed: list[str] = []
    for block, members in experts.items():
        merged = _merged(block, members, expert_count)
        used = {key for p in merged for key in p.sources}
        prepared.extend(merged)
        unprocessed.extend(info.key for info in members.values() if info.key not in used)
    return prepared, vision, unprocessed


def _unprefixed(key: str, hf_architecture: str | None) -> str:
    # The same tests, in the same order, as the converter (str.replace replaces every match).
    if hf_architecture == "LlamaModel":
        return "model." + key
    if key.startswith("model.text_model"):
        return key.replace("text_model.", "")
    if key.startswith("language_model."):
        return key.replace("language_model.", "")
    return key


def _merged(block: int, members: dict[str, TensorInfo],
            expert_count: int | None) -> list[Prepared]:
    """The block's three stacked tensors; none when the converter would not merge them."""
    count = expert_count if expert_count is not None else 1 + max(
        int(m.group(2)) for m in map(_HUB_EXPERT.fullmatch, members) if m)
    if len(members) < count * 3:
        return []
    out: list[Prepared] = []
    for wid in ("w1", "w2", "w3"):
        names = [f"model.layers.{block}.block_sparse_moe.experts.{x}.{wid}.weight"
                 for x in range(count)]
        if any(name not in members for name in names):
            return []
        infos = [members[name] for name in names]
        if len({(i.shape, i.dtype) for i in infos}) != 1:
            return []  # torch.stack refuses experts of different shapes
        first = infos[0]
        sizes = [i.nbytes for i in infos]
        stacked = replace(first, shape=(count, *first.shape), storage=None, aliases=(),
                          nbytes=None if None in sizes else sum(s or 0 for s in sizes),
                          variable_name=first.key.replace(".experts.0.",
                                                          f".experts.{{0..{count - 1}}}."))
        out.append(Prepared(f"layers.{block}.feed_forward.experts.{wid}.weight", stacked,
                            tuple(i.key for i in infos)))
    return out


def _split_fused(info: TensorInfo, block: int, which: str) -> list[Prepared]:
    experts, rows, columns = info.shape
    if which == "down_proj":
        return [Prepared(f"layers.{block}.feed_forward.experts.w2.weight",
                         replace(info, variable_name=info.key), (info.key,))]
    if rows % 2:
        return [Prepared(info.key, info, (info.key,))]  # not gate and up halves: left unmapped
    half = replace(info, shape=(experts, rows // 2, columns), storage=None, aliases=(),
                   nbytes=None if info.nbytes is None else info.nbytes // 2,
                   variable_name=info.key)
    return [Prepared(f"layers.{block}.feed_forward.experts.{wid}.weight", half, (info.key,))
            for wid in ("w1", "w3")]
