"""LoRA adapters: merged (W + scale·B·A) or dropped, said explicitly; checked by values against
peft's own ``merge_and_unload`` on a tiny model wrapped with ``get_peft_model``."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest

torch = pytest.importorskip("torch", reason="torch builds the fixtures and is the oracle")
peft = pytest.importorskip("peft", reason="peft's merge_and_unload is the truth")
safetensors_torch = pytest.importorskip("safetensors.torch", reason="safetensors writes fixtures")

from ckptdiff import diff, load_state_dict, remap  # noqa: E402
from ckptdiff.errors import IncompatibleError, UsageError  # noqa: E402
from ckptdiff.fix.lora_merge import decode, encode  # noqa: E402
from ckptdiff.render.rows import outlook  # noqa: E402

ATOL = 1e-6
MODEL_PY = '''from torch import nn


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 8)
        self.q_proj = nn.Linear(8, 8)
        self.v_proj = nn.Linear(8, 8)
        self.out = nn.Linear(8, 4)


class Gpt(nn.Module):  # transformers' Conv1D stores its weight [in, out]
    def __init__(self):
        super().__init__()
        from transformers.pytorch_utils import Conv1D
        self.c_attn = Conv1D(12, 8)
        self.c_proj = Conv1D(8, 8)
'''


@dataclass
class Built:
    """A tiny base model, its PEFT full state dict and adapter-only file, and the merged truth."""

    dir: Path
    model: str  # the Python class, as a target
    base: Path  # the base weights (safetensors)
    full: Path  # the PeftModel's whole state dict, adapter_config.json beside it
    adapter: Path  # save_pretrained's adapter_model.safetensors, adapter_config.json beside it
    truth: dict[str, Any]  # merge_and_unload()'s state dict

    def fresh(self) -> Any:
        """A new base model (random weights) to load into."""
        sys.path.insert(0, str(self.dir))
        try:
            import importlib

            module = importlib.import_module(f"lora_models_{self.dir.name}")
            return getattr(module, self.model.rsplit(":", 1)[1])()
        finally:
            sys.path.pop(0)


def _build(root: Path, name: str, **config: Any) -> Built:
    root.mkdir()
    (root / f"lora_models_{root.name}.py").write_text(MODEL_PY)
    model_py = f"{root}/lora_models_{root.name}.py:{name}"
    built = Built(root, model_py, root / "base.safetensors", root / "full" / "model.safetensors",
                  root / "adapter" / "adapter_model.safetensors", {})
    torch.manual_seed(0)
    base = built.fresh()
    safetensors_torch.save_file({k: v.contiguous() for k, v in base.state_dict().items()},
                                str(built.base))
    wrapped = peft.get_peft_model(base, peft.LoraConfig(**config))
    for key, value in wrapped.named_parameters():
        if "lora_B" in key or "lora_embedding_B" in key:  # peft starts B at zero: no effect
            torch.nn.init.normal_(value)
    wrapped.save_pretrained(str(root / "adapter"))
    built.full.parent.mkdir()
    safetensors_torch.save_file({k: v.contiguous() for k, v in wrapped.state_dict().items()},
                                str(built.full))
    shutil.copy(root / "adapter" / "adapter_config.json", built.full.parent)
    built.truth = {k: v.clone() for k, v in wrapped.merge_and_unload().state_dict().items()}
    return built


@pytest.fixture(scope="module", params=["plain", "rslora_patterns", "conv1d"])
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Built:
    root = tmp_path_factory.mktemp("lora") / request.param
    if request.param == "plain":
        return _build(root, "Tiny", r=4, lora_alpha=8,
                      target_modules=["emb", "q_proj", "v_proj", "out"])
    if request.param == "rslora_patterns":
        return _build(root, "Tiny", r=4, lora_alpha=8, use_rslora=True,
                      target_modules=["emb", "q_proj", "v_proj", "out"],
                      rank_pattern={"out": 2}, alpha_pattern={"q_proj": 16})
    return _build(root, "Gpt", r=2, lora_alpha=6, fan_in_fan_out=True,
                  target_modules=["c_attn", "c_proj"])


def _equal_to_truth(state: dict[str, Any], truth: dict[str, Any]) -> None:
    assert set(state) == set(truth)
    for key, value in truth.items():
        assert state[key].dtype == value.dtype, key
        torch.testing.assert_close(state[key], value, atol=ATOL, rtol=0)


def test_full_state_dict_is_merged_as_peft_merges_it(built: Built, tmp_path: Path) -> None:
    report = diff(built.full, built.model)
    merges = [c for c in report.conversions if c.ops[0].op == "merge_lora"]
    stored = safetensors_torch.load_file(str(built.full))
    halves_a = [k for k in stored if ".lora_A." in k or ".lora_embedding_A." in k]
    assert len(merges) == len(halves_a) > 0
    assert all(c.confidence == 0.97 and len(c.sources) == 3 for c in merges)
    assert not [u for u in report.unpaired if u.source_key and "lora_" in u.source_key]
    # The outlook performs the merges: no adapter key remains, and the fixed copy loads.
    headline = str(outlook(report))
    assert "merge LoRA lora_A,lora_B" in headline
    assert headline.endswith(f"{len(merges)} conversions): it loads")
    result = remap(built.full, built.model, tmp_path / "merged.safetensors")
    assert result.report.compatible and result.converted == len(merges)
    model = built.fresh()
    model.load_state_dict(safetensors_torch.load_file(str(tmp_path / "merged.safetensors")),
                          strict=True)
    _equal_to_truth(model.state_dict(), built.truth)


def test_load_state_dict_applies_the_confident_merge(built: Built) -> None:
    model = built.fresh()
    fixed = load_state_dict(model, built.full)
    assert fixed.compatible
    _equal_to_truth(model.state_dict(), built.truth)


def test_adapter_only_file_is_merged_into_the_base_checkpoint(built: Built,
                                                              tmp_path: Path) -> None:
    report = diff(built.adapter, built.model)
    notes = [u.reason for u in report.unpaired if u.source_key and "lora_" in u.source_key]
    assert notes and all("adapter-only" in n and "--lora-adapter" in n for n in notes)
    assert not report.conversions
    result = remap(built.base, built.model, tmp_path / "merged.safetensors",
                   lora_adapter=built.adapter)
    assert result.report.compatible
    _equal_to_truth(safetensors_torch.load_file(str(tmp_path / "merged.safetensors")),
                    built.truth)


def test_the_report_validates_against_the_shipped_schema(built: Built,
                                                         report_schema: dict[str, Any]) -> None:
    data = diff(built.full, built.model).to_dict()
    ops = [op for c in data["conversions"] for op in c["ops"]]
    assert ops and {op["op"] for op in ops} == {"merge_lora"}
    jsonschema.validate(data, report_schema)


@pytest.fixture(scope="module")
def unconfigured(tmp_path_factory: pytest.TempPathFactory) -> tuple[Built, Path]:
    """The issue's case: a full PEFT state dict with no adapter_config.json beside it."""
    built = _build(tmp_path_factory.mktemp("bare") / "plain", "Tiny", r=4, lora_alpha=8,
                   target_modules=["emb", "q_proj", "v_proj", "out"])
    bare = tmp_path_factory.mktemp("bare_file") / "peft_full.safetensors"
    shutil.copy(built.full, bare)
    return built, bare


def test_unknown_scale_is_said_not_guessed(unconfigured: tuple[Built, Path]) -> None:
    built, bare = unconfigured
    report = diff(bare, built.model)
    assert not report.conversions
    adapter_notes = [u for u in report.unpaired if u.source_key and "lora_" in u.source_key]
    assert len(adapter_notes) == 8  # the 8 adapter tensors, each explained
    assert all("unknown" in u.reason and "--drop-lora" in u.reason and "--lora-scale" in u.reason
               for u in adapter_notes)
    run = subprocess.run([sys.executable, "-m", "ckptdiff", "diff", str(bare), built.model],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1
    text = " ".join(run.stdout.split())
    assert "(8 keys): LoRA adapter (r=4): its scale lora_alpha/r is unknown" in text
    assert "is not guessed" in text
    assert "8 unexpected keys remain" in text  # the words, now with what to do
    assert "8 LoRA adapter tensors merge or drop only when told" in text


def test_unknown_scale_remap_keeps_the_adapter_until_told(unconfigured: tuple[Built, Path],
                                                          tmp_path: Path) -> None:
    built, bare = unconfigured
    kept = remap(bare, built.model, tmp_path / "kept.safetensors")
    assert not kept.report.compatible
    assert sum(1 for f in kept.report.findings if f.kind == "unexpected") == 8
    dropped = remap(bare, built.model, tmp_path / "dropped.safetensors", drop_lora=True)
    assert dropped.report.compatible and len(dropped.dropped) == 8
    assert all("LoRA adapter dropped" in line for line in dropped.dropped)
    base = safetensors_torch.load_file(str(built.base))
    for key, value in safetensors_torch.load_file(str(tmp_path / "dropped.safetensors")).items():
        assert torch.equal(value, base[key]), key
    stated = remap(bare, built.model, tmp_path / "stated.safetensors", lora_scale=8 / 4)
    assert stated.report.compatible
    _equal_to_truth(safetensors_torch.load_file(str(tmp_path / "stated.safetensors")),
                    built.truth)
    with pytest.raises(UsageError, match="choose one"):
        remap(bare, built.model, tmp_path / "both.safetensors", drop_lora=True, lora_scale=2.0)


def test_unknown_scale_load_state_dict_refuses_then_drops(
        unconfigured: tuple[Built, Path]) -> None:
    built, bare = unconfigured
    with pytest.raises(IncompatibleError, match="lora_alpha/r is unknown"):
        load_state_dict(built.fresh(), bare)
    model = built.fresh()
    assert load_state_dict(model, bare, drop_lora=True).compatible
    base = safetensors_torch.load_file(str(built.base))
    for key, value in model.state_dict().items():
        assert torch.equal(value, base[key]), key


def test_cli_remap_lora_scale(unconfigured: tuple[Built, Path], tmp_path: Path) -> None:
    built, bare = unconfigured
    out = tmp_path / "cli.safetensors"
    run = subprocess.run([sys.executable, "-m", "ckptdiff", "remap", str(bare), built.model,
                          "-o", str(out), "--lora-scale", "2"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "4 converted" in run.stderr
    _equal_to_truth(safetensors_torch.load_file(str(out)), built.truth)


def test_dora_and_two_adapters_are_no_plain_merge(tmp_path: Path) -> None:
    dora = _build(tmp_path / "dora", "Tiny", r=4, lora_alpha=8, use_dora=True,
                  target_modules=["q_proj"])
    report = diff(dora.full, dora.model)
    assert not report.conversions
    assert any("DoRA" in u.reason for u in report.unpaired)
    # A second adapter on one module: which to merge is the user's call.
    state = safetensors_torch.load_file(str(dora.full))
    renamed = {k.replace(".default", ".other"): v.clone() for k, v in state.items()
               if "lora_A" in k or "lora_B" in k}
    plain = {k: v for k, v in state.items() if "magnitude" not in k}
    two = tmp_path / "two" / "model.safetensors"
    two.parent.mkdir()
    safetensors_torch.save_file({**plain, **renamed}, str(two))
    (two.parent / "adapter_config.json").write_text(json.dumps({"r": 4, "lora_alpha": 8}))
    report = diff(two, dora.model)
    assert not report.conversions
    assert any("several LoRA adapters (default, other)" in u.reason for u in report.unpaired)


def test_bfloat16_encoding_rounds_as_torch_does() -> None:
    values = torch.randn(4096, generator=torch.Generator().manual_seed(1)) * 1e3
    raw = encode(values.numpy(), "bfloat16")
    assert raw == values.to(torch.bfloat16).view(torch.int16).numpy().tobytes()
    back = decode(raw, "bfloat16", (4096,))
    assert torch.equal(torch.from_numpy(back.copy()), values.to(torch.bfloat16).float())


def test_bfloat16_base_merges_in_float32_and_stays_bfloat16(tmp_path: Path) -> None:
    built = _build(tmp_path / "bf16", "Tiny", r=4, lora_alpha=8, target_modules=["q_proj", "out"])
    state = {k: v.to(torch.bfloat16) for k, v in safetensors_torch.load_file(
        str(built.full)).items()}
    half = tmp_path / "half" / "model.safetensors"
    half.parent.mkdir()
    safetensors_torch.save_file(state, str(half))
    shutil.copy(built.full.parent / "adapter_config.json", half.parent)
    result = remap(half, built.model, tmp_path / "merged.safetensors")
    assert result.report.compatible and result.converted == 2
    merged = safetensors_torch.load_file(str(tmp_path / "merged.safetensors"))
    for module in ("q_proj", "out"):
        prefix = f"base_model.model.{module}"
        a = state[f"{prefix}.lora_A.default.weight"].float()
        b = state[f"{prefix}.lora_B.default.weight"].float()
        wanted = (state[f"{prefix}.base_layer.weight"].float() + 2.0 * (b @ a)).to(torch.bfloat16)
        assert merged[f"{module}.weight"].dtype == torch.bfloat16
        torch.testing.assert_close(merged[f"{module}.weight"].float(), wanted.float(),
                                   rtol=2 ** -8, atol=0)


def test_an_adapter_file_must_hold_an_adapter(built: Built, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="holds no LoRA adapter"):
        remap(built.base, built.model, tmp_path / "x.safetensors", lora_adapter=built.base)


def test_a_model_with_adapters_gets_renames_not_merges(built: Built, tmp_path: Path) -> None:
    state = safetensors_torch.load_file(str(built.full))
    other = tmp_path / "other.safetensors"
    safetensors_torch.save_file({k.replace(".default", ".other"): v for k, v in state.items()},
                                str(other))
    report = diff(built.full, other)
    assert not report.conversions
    renamed = {s.source_key: s.target_key for s in report.suggestions}
    lora_keys = [k for k in state if ".lora_" in k and ".default" in k]
    assert lora_keys and all(renamed[k] == k.replace(".default", ".other") for k in lora_keys)


def test_a_config_for_other_modules_is_not_trusted(built: Built, tmp_path: Path) -> None:
    moved = tmp_path / "moved" / "model.safetensors"
    moved.parent.mkdir()
    shutil.copy(built.full, moved)
    config = json.loads((built.full.parent / "adapter_config.json").read_text())
    config["target_modules"] = ["k_proj"]
    (moved.parent / "adapter_config.json").write_text(json.dumps(config))
    report = diff(moved, built.model)
    assert not [c for c in report.conversions if c.ops[0].op == "merge_lora"]
    assert any("target_modules do not name it" in u.reason for u in report.unpaired)


@pytest.mark.parametrize(("key", "parsed"), [
    ("base_model.model.q.lora_A.default.weight", ("base_model.model.q", "linear", "A", "default")),
    ("base_model.model.q.lora_B.weight", ("base_model.model.q", "linear", "B", None)),
    ("m.emb.lora_embedding_A.default", ("m.emb", "embedding", "A", "default")),
    ("m.emb.lora_embedding_B", ("m.emb", "embedding", "B", None)),
    ("m.q.lora_B.default.bias", None),  # a LoRA bias: no plain merge
    ("m.q.base_layer.weight", None),
    ("lora_A.weight", None),  # a top-level name, not a module's adapter
])
def test_adapter_keys_parse_as_peft_names_them(key: str, parsed: object) -> None:
    from ckptdiff.rename.lora import adapter_part

    assert adapter_part(key) == parsed


def test_shapes_that_are_no_lora_update_are_said_not_merged() -> None:
    from tests.helpers import t

    from ckptdiff.rename.lora import find_adapters

    sources = [t("q.base_layer.weight", 8, 6), t("q.lora_A.default.weight", 4, 6),
               t("q.lora_B.default.weight", 8, 3),  # r 4 vs 3
               t("k.base_layer.weight", 8, 8), t("k.lora_A.default.weight", 2, 8),
               t("v.lora_magnitude_vector.default.weight", 8)]  # DoRA without its pair
    targets = {k: t(k, 8, 6 if k.startswith("q") else 8) for k in ("q.weight", "k.weight")}
    adapters, notes = find_adapters(sources, targets, {"q.base_layer.weight": "q.weight"})
    assert not adapters
    reasons = {n.source_key: n.reason for n in notes}
    assert "are no [r, in], [out, r] pair" in reasons["q.lora_A.default.weight"]
    assert "without its other half" in reasons["k.lora_A.default.weight"]
    assert "without its lora_A/lora_B pair" in reasons["v.lora_magnitude_vector.default.weight"]


def test_a_written_rules_file_with_merges_applies_back(built: Built, tmp_path: Path) -> None:
    # remap --rules writes the diff's merge_lora conversions; the same file, applied to the same
    # checkpoint, must perform them (the loader once refused the op it had written).
    rules = tmp_path / "rules.json"
    written = remap(built.full, built.model, tmp_path / "first.safetensors", rules=rules)
    assert '"merge_lora"' in rules.read_text() and written.converted > 0
    applied = remap(built.full, built.model, tmp_path / "again.safetensors", rules=rules)
    assert applied.report.compatible and applied.converted == written.converted
    model = built.fresh()
    model.load_state_dict(safetensors_torch.load_file(str(tmp_path / "again.safetensors")),
                          strict=True)
    _equal_to_truth(model.state_dict(), built.truth)
