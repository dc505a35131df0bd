"""LoRA adapters in a checkpoint: found from keys and shapes, merged or dropped, said explicitly.

PEFT names them ``<mod>.lora_A[.<adapter>].weight`` ``[r, in]`` and
``<mod>.lora_B[.<adapter>].weight`` ``[out, r]`` (an embedding's are the parameters
``lora_embedding_A`` ``[r, num]`` and ``lora_embedding_B`` ``[dim, r]``) beside the wrapped
``<mod>.base_layer.weight``; an adapter-only file (``adapter_model.safetensors``) holds the
adapter alone, adapter names left out. The model has ``<mod>.weight``. Merged, that is
``W + scale·B·A`` (``(B·A)ᵀ`` for an embedding or ``fan_in_fan_out``), as peft's
``merge_and_unload`` computes it; the scale comes from ``adapter_config.json`` and is never
guessed. DoRA (``lora_magnitude_vector``) and a LoRA bias are no plain merge: said, not merged.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ckptdiff.manifest import TensorInfo
from ckptdiff.rename.lora_config import LoraSettings
from ckptdiff.rename.results import Conversion, ConversionOp, Unpaired

_PARTS = {"lora_A": ("linear", "A"), "lora_B": ("linear", "B"),
          "lora_embedding_A": ("embedding", "A"), "lora_embedding_B": ("embedding", "B")}
_NOT_PLAIN = ("lora_magnitude_vector",)  # DoRA
WRAPPER = "base_model.model."  # peft's prefix of an adapter-only file's keys
CONFIDENCE = 0.97  # shapes and the config agree; a merge is what merge_and_unload does


@dataclass(frozen=True)
class Adapter:
    """One module's LoRA pair, with the base weight it changes (``base`` None: not stored)."""

    module: str  # the source's module name (``base_model.model.q_proj``)
    adapter: str | None  # the adapter's name (``default``), None in an adapter-only file
    kind: str  # "linear" or "embedding"
    a: TensorInfo
    b: TensorInfo
    target: str  # the model's weight key
    base: TensorInfo | None
    extras: tuple[str, ...] = ()  # DoRA magnitudes, LoRA biases: keys no plain merge covers

    @property
    def keys(self) -> tuple[str, str]:
        """The adapter's own keys (``lora_A``, ``lora_B``)."""
        return self.a.key, self.b.key

    @property
    def rank(self) -> int:
        """``r``: the rows of ``lora_A``."""
        return self.a.shape[0]


def adapter_part(key: str) -> tuple[str, str, str, str | None] | None:
    """``(module, kind, "A"/"B", adapter name)`` of a LoRA weight key, else None."""
    tokens = key.split(".")
    for at in range(1, len(tokens)):
        if tokens[at] not in _PARTS:
            continue
        kind, part = _PARTS[tokens[at]]
        rest = tokens[at + 1:]
        if kind == "linear":
            if not rest or rest[-1] != "weight":
                return None  # a LoRA bias (``lora_B.bias``): no plain merge
            rest = rest[:-1]
        if len(rest) > 1:
            return None
        return ".".join(tokens[:at]), kind, part, rest[0] if rest else None
    return None


def is_adapter_key(key: str) -> bool:
    """Whether ``key`` is one of a LoRA adapter's own tensors (pair, DoRA magnitude, bias)."""
    tokens = key.split(".")
    return any(t in _PARTS or t in _NOT_PLAIN for t in tokens[1:])


def find_adapters(sources: Sequence[TensorInfo], targets: Mapping[str, TensorInfo],
                  renamed: Mapping[str, str]) -> tuple[list[Adapter], list[Unpaired]]:
    """The LoRA pairs of ``sources`` that change a weight of ``targets``, and notes on the rest.

    ``renamed`` maps source keys to the target keys the renames give them (``…base_layer.weight``
    → ``….weight``). A pair is kept when ``A`` is ``[r, in]``, ``B`` ``[out, r]`` and the base
    weight ``[out, in]`` (``[in, out]`` stored transposed), and exactly one adapter changes it.
    """
    by_key = {info.key: info for info in sources}
    pairs: dict[tuple[str, str | None], dict[str, TensorInfo]] = defaultdict(dict)
    kinds: dict[tuple[str, str | None], str] = {}
    extras: dict[str, list[str]] = defaultdict(list)
    for info in sources:
        found = adapter_part(info.key)
        if found is None:
            if is_adapter_key(info.key):
                module = info.key.split(".lora_")[0]
                extras[module].append(info.key)
            continue
        module, kind, part, name = found
        pairs[(module, name)][part] = info
        kinds[(module, name)] = kind
    adapters: list[Adapter] = []
    notes: list[Unpaired] = []
    names: dict[str, list[str | None]] = defaultdict(list)
    for module, name in pairs:
        names[module].append(name)
    for (module, name), parts in pairs.items():
        keys = tuple(p.key for p in parts.values())
        if set(parts) != {"A", "B"}:
            notes += _notes(keys, "a LoRA half without its other half (lora_A/lora_B)")
            continue
        if len(names[module]) > 1:
            listed = ", ".join(sorted(str(n) for n in names[module]))
            notes += _notes(keys, f"{module} has several LoRA adapters ({listed}): which one to "
                                  "merge is yours to say; none is merged")
            continue
        base_key, target = _base_of(module, by_key, targets, renamed)
        if target is None:
            notes += _notes(keys, f"a LoRA adapter of {module}: the model has no {module}.weight "
                                  "it could change")
            continue
        adapter = Adapter(module, name, kinds[(module, name)], parts["A"], parts["B"], target,
                          by_key.get(base_key) if base_key else None,
                          tuple(extras.get(module, ())))
        why = _misfit(adapter, targets[target])
        if why is not None:
            notes += _notes(keys, f"a LoRA adapter of {target} that does not fit it: {why}")
            continue
        adapters.append(adapter)
    paired = {module for module, _ in pairs}
    for module, orphans in extras.items():
        if module not in paired:
            notes += _notes(orphans, "a DoRA magnitude or LoRA bias without its lora_A/lora_B pair")
    return adapters, notes


def _base_of(module: str, by_key: Mapping[str, TensorInfo], targets: Mapping[str, TensorInfo],
             renamed: Mapping[str, str]) -> tuple[str | None, str | None]:
    """The stored base weight of ``module`` (if any) and the model's weight key it makes."""
    for base in (f"{module}.base_layer.weight", f"{module}.weight"):
        if base in by_key:
            target = renamed.get(base, base)
            return base, target if target in targets else None
    bare = module[len(WRAPPER):] if module.startswith(WRAPPER) else module
    weight = f"{bare}.weight"
    if weight in targets:  # an adapter-only file: the base weight is the model's (or beside)
        return (weight if weight in by_key else None), weight
    return None, None


def _misfit(adapter: Adapter, target: TensorInfo) -> str | None:
    """Why the pair's shapes cannot be ``target``'s update, or None when they fit."""
    a, b = adapter.a.shape, adapter.b.shape
    if len(a) != 2 or len(b) != 2 or a[0] != b[1]:
        return f"lora_A {list(a)} and lora_B {list(b)} are no [r, in], [out, r] pair"
    update, wanted = (b[0], a[1]), tuple(target.shape)
    if adapter.kind == "embedding" and wanted != update[::-1]:
        return f"(B·A)ᵀ is {list(update[::-1])}, the embedding {list(wanted)}"
    if wanted != update and wanted != update[::-1]:
        return f"B·A is {list(update)}, the weight {list(wanted)}"
    if adapter.base is not None and tuple(adapter.base.shape) != wanted:
        return f"the stored base weight is {list(adapter.base.shape)}, the model's {list(wanted)}"
    return None


def merge_conversion(adapter: Adapter, target: TensorInfo, scale: float, how: str,
                     confidence: float, fan_in_fan_out: bool = False) -> Conversion:
    """The ``merge_lora`` conversion ``[W, A, B] → W + scale·B·A`` of one adapter.

    The update is transposed for an embedding and where the weight is stored ``[in, out]``
    (transformers' ``Conv1D``): peft decides that by the layer's type, whatever the config says,
    so the shapes decide here; only a square weight, which fits both ways, takes the config's
    ``fan_in_fan_out`` (given as ``fan_in_fan_out``).
    """
    assert adapter.base is not None
    b, a = adapter.b.shape, adapter.a.shape
    if adapter.kind == "embedding":
        transposed = True
    elif b[0] == a[1]:
        transposed = fan_in_fan_out
    else:
        transposed = tuple(target.shape) != (b[0], a[1])
    op = ConversionOp("merge_lora", scale=scale, fan_in_fan_out=transposed or None)
    rule = f"merge LoRA lora_A,lora_B into the base weight (scale {scale:g} = {how})"
    return Conversion((adapter.base.key, adapter.a.key, adapter.b.key), (adapter.target,),
                      (op,), confidence, rule)


def plan_adapters(adapters: Sequence[Adapter], targets: Mapping[str, TensorInfo],
                  settings: LoraSettings | None) -> tuple[list[Conversion], list[Unpaired]]:
    """Merges where the config says the scale; notes saying why not everywhere else."""
    conversions: list[Conversion] = []
    notes: list[Unpaired] = []
    for adapter in adapters:
        module = adapter.target.rsplit(".", 1)[0]
        head = f"LoRA adapter (r={adapter.rank}) of {adapter.target}"
        if adapter.extras:
            notes += _notes((*adapter.keys, *adapter.extras),
                            f"{head} with DoRA magnitudes or a LoRA bias "
                            f"({', '.join(adapter.extras)}): not a plain W + scale·B·A merge; "
                            "merge it with peft's merge_and_unload")
            continue
        if adapter.base is None:
            notes += _notes(adapter.keys, f"LoRA adapter (r={adapter.rank}) of a PEFT "
                                          "adapter-only file: it holds no base weights; peft's "
                                          "PeftModel.from_pretrained(model, DIR) loads it onto "
                                          "the model, `ckptdiff remap BASE MODEL --lora-adapter "
                                          "THIS` merges it into the base checkpoint")
            continue
        if settings is None:
            notes += _notes(adapter.keys, f"LoRA adapter (r={adapter.rank}): its scale "
                                          "lora_alpha/r is unknown (no adapter_config.json "
                                          "beside the checkpoint) and is not guessed; drop it "
                                          "(remap --drop-lora, load_state_dict(drop_lora=True): "
                                          "the base weights load, the adapter's effect is lost) "
                                          "or merge W + S·B·A at a scale you state "
                                          "(--lora-scale S, lora_scale=S)")
            continue
        if settings.targets(module) is False:
            notes += _notes(adapter.keys, f"{head}: {settings.path}'s target_modules do not "
                                          "name it, so the config may be another adapter's; "
                                          "nothing is merged")
            continue
        rank, _ = settings.rank_and_alpha(module)
        if rank != adapter.rank:
            notes += _notes(adapter.keys, f"{head}: {settings.path} says r={rank}; the scale "
                                          "is not trusted, so nothing is merged")
            continue
        scale, how = settings.scale(module)
        conversions.append(merge_conversion(adapter, targets[adapter.target], scale, how,
                                            CONFIDENCE, settings.fan_in_fan_out))
    return conversions, notes


def _notes(keys: Sequence[str], reason: str) -> list[Unpaired]:
    return [Unpaired(key, None, reason) for key in keys]
