"""``remap`` and ``load_state_dict`` perform conversions: values checked against torch's ops."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="torch builds the fixtures and is the oracle")
safetensors_torch = pytest.importorskip("safetensors.torch", reason="safetensors writes fixtures")

from ckptdiff import remap  # noqa: E402

EXPERTS, HIDDEN, INNER = 3, 8, 12


def _save(tensors: dict[str, torch.Tensor], path: Path) -> Path:
    safetensors_torch.save_file({k: v.contiguous() for k, v in tensors.items()}, str(path))
    return path


def _experts(dtype: torch.dtype) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return {f"layers.{i}.moe.experts.{e}.{w}.weight":
            torch.randn(*((HIDDEN, INNER) if w == "w2" else (INNER, HIDDEN)),
                        generator=generator).to(dtype)
            for i in range(2) for e in range(EXPERTS) for w in ("w1", "w2", "w3")}


@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_stacked_experts_written_as_transformers_fuses_them(
        tmp_path: Path, transposed: bool, dtype: torch.dtype) -> None:
    parts = _experts(dtype)
    expected = {}
    for i in range(2):
        def stacked(w: str, layer: int = i) -> torch.Tensor:
            return torch.stack([parts[f"layers.{layer}.moe.experts.{e}.{w}.weight"]
                                for e in range(EXPERTS)])
        gate_up = torch.cat([stacked("w1"), stacked("w3")], dim=1)  # MergeModulelist + Concatenate
        expected[f"layers.{i}.moe.experts.gate_up_proj"] = (gate_up.transpose(1, 2)
                                                            if transposed else gate_up)
        expected[f"layers.{i}.moe.experts.down_proj"] = stacked("w2")
    source = _save(parts, tmp_path / "hub.safetensors")
    target = _save({k: torch.zeros_like(v) for k, v in expected.items()},
                   tmp_path / "t.safetensors")
    result = remap(source, target, tmp_path / "fixed.safetensors")
    assert result.report.compatible
    assert result.converted == 4 and result.dropped == ()
    written = safetensors_torch.load_file(str(tmp_path / "fixed.safetensors"))
    assert set(written) == set(expected)
    for key, value in expected.items():
        assert torch.equal(written[key], value), key


def test_split_weight_and_bias_unequal_parts(tmp_path: Path) -> None:
    generator = torch.Generator().manual_seed(1)
    fused = {"b.0.ffn.proj.weight": torch.randn(20, HIDDEN, generator=generator),
             "b.0.ffn.proj.bias": torch.randn(20, generator=generator),
             "b.0.ffn.keep.weight": torch.randn(4, 4, generator=generator)}
    pieces = {}
    for leaf in ("weight", "bias"):
        first, second = fused[f"b.0.ffn.proj.{leaf}"].split([14, 6])
        pieces[f"b.0.ffn.proj.fc1.{leaf}"], pieces[f"b.0.ffn.proj.fc2.{leaf}"] = first, second
    pieces["b.0.ffn.keep.weight"] = fused["b.0.ffn.keep.weight"]
    source = _save(fused, tmp_path / "fused.safetensors")
    target = _save({k: torch.zeros_like(v) for k, v in pieces.items()}, tmp_path / "t.safetensors")
    result = remap(source, target, tmp_path / "split.pth")
    assert result.report.compatible and result.converted == 4
    written = torch.load(tmp_path / "split.pth", weights_only=True)
    assert set(written) == set(pieces)
    assert all(torch.equal(written[k], v) for k, v in pieces.items())


def test_load_state_dict_applies_conversions(tmp_path: Path) -> None:
    from ckptdiff import load_state_dict

    class Experts(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.gate_up_proj = torch.nn.Parameter(torch.zeros(EXPERTS, 2 * INNER, HIDDEN))
            self.down_proj = torch.nn.Parameter(torch.zeros(EXPERTS, HIDDEN, INNER))

    class Layer(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.moe = torch.nn.Module()
            self.moe.experts = Experts()

    model = torch.nn.Module()
    model.layers = torch.nn.ModuleList([Layer(), Layer()])
    parts = _experts(torch.float32)
    report = load_state_dict(model, _save(parts, tmp_path / "hub.safetensors"))
    assert report.compatible
    loaded = model.layers[1].moe.experts.gate_up_proj.detach()
    assert torch.equal(loaded[2, INNER:], parts["layers.1.moe.experts.2.w3.weight"])
    assert torch.equal(model.layers[0].moe.experts.down_proj.detach()[1],
                       parts["layers.0.moe.experts.1.w2.weight"])


def test_emitted_convert_code_runs_and_loads_strict(tmp_path: Path) -> None:
    from ckptdiff import diff
    from ckptdiff.rename.snippet import conversion_snippet

    parts = _experts(torch.float32)
    gate_up = {i: torch.cat([torch.stack([parts[f"layers.{i}.moe.experts.{e}.{w}.weight"]
                                          for e in range(EXPERTS)]) for w in ("w1", "w3")], 1)
               for i in range(2)}
    target = {**{f"layers.{i}.moe.experts.gate_up_proj": gate_up[i] for i in range(2)},
              **{f"layers.{i}.moe.experts.down_proj": torch.stack(
                  [parts[f"layers.{i}.moe.experts.{e}.w2.weight"] for e in range(EXPERTS)])
                 for i in range(2)}}
    report = diff(_save(parts, tmp_path / "hub.safetensors"),
                  _save({k: torch.zeros_like(v) for k, v in target.items()},
                        tmp_path / "t.safetensors"))
    namespace: dict[str, object] = {}
    exec("\n".join(conversion_snippet(report.conversions)), namespace)  # noqa: S102
    fixed = namespace["convert"](parts)  # type: ignore[operator]
    assert set(fixed) == set(target)
    assert all(torch.equal(fixed[k], v) for k, v in target.items())
