"""``ckptdiff remap``: the written checkpoint holds the same values under the target's names."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import ckptdiff
from ckptdiff.fix import remap_sources

torch = pytest.importorskip("torch", reason="torch is not installed")
safetensors_torch = pytest.importorskip("safetensors.torch", reason="safetensors is not installed")
nn = torch.nn


def cnn(classes: int = 10) -> Any:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(),
                         nn.Linear(32, classes))


def dataparallel_checkpoint(path: Path, model: Any) -> dict[str, Any]:
    state = {"module." + k: v.clone() for k, v in model.state_dict().items()}
    # A transposed view: its bytes are not contiguous in the storage.
    state["module.4.weight"] = state["module.4.weight"].t().contiguous().t()
    optimizer = {"state": {0: {"exp_avg": torch.zeros(3)}}, "param_groups": [{"params": [0]}]}
    torch.save({"state_dict": state, "optimizer": optimizer, "epoch": 3}, path)
    return state


def same_values(state: dict[str, Any], model: Any) -> bool:
    expected = model.state_dict()
    return set(state) == set(expected) and all(torch.equal(state[k], v)
                                               for k, v in expected.items())


def test_torch_zip_to_safetensors_streams_every_tensor(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    model = cnn()
    dataparallel_checkpoint(tmp_path / "dp.pth", model)
    monkeypatch.setattr(remap_sources, "CHUNK", 16)  # many chunks per tensor
    result = ckptdiff.remap(tmp_path / "dp.pth", model, tmp_path / "fixed.safetensors")
    assert result.report.compatible
    assert (result.written, result.renamed, result.transformed) == (9, 9, 0)
    assert any("optimizer state" in d for d in result.dropped)
    assert same_values(safetensors_torch.load_file(tmp_path / "fixed.safetensors"), model)


def test_pth_output_and_rules_file_round_trip(tmp_path: Path) -> None:
    model = cnn()
    dataparallel_checkpoint(tmp_path / "dp.pth", model)
    rules = tmp_path / "rules.json"
    first = ckptdiff.remap(tmp_path / "dp.pth", model, tmp_path / "a.pth", rules=rules)
    assert first.rules_action == "written"
    document = json.loads(rules.read_text())
    assert document["schema"] == "ckptdiff.rules/1"
    assert [r["pattern"] for r in document["rules"]] == ["^module\\."]
    second = ckptdiff.remap(tmp_path / "dp.pth", model, tmp_path / "b.safetensors", rules=rules)
    assert second.rules_action == "applied" and second.report.compatible
    assert same_values(torch.load(tmp_path / "a.pth", weights_only=True), model)
    assert same_values(safetensors_torch.load_file(tmp_path / "b.safetensors"), model)


def test_sharded_safetensors_source(tmp_path: Path) -> None:
    model = cnn()
    state = {"backbone." + k: v for k, v in model.state_dict().items()}
    keys = sorted(state)
    shards = {"m-1.safetensors": keys[:4], "m-2.safetensors": keys[4:]}
    for name, members in shards.items():
        safetensors_torch.save_file({k: state[k].contiguous() for k in members}, tmp_path / name)
    index = {"metadata": {}, "weight_map": {k: n for n, ms in shards.items() for k in ms}}
    (tmp_path / "m.safetensors.index.json").write_text(json.dumps(index))
    renamed = nn.Sequential()
    renamed.add_module("trunk", cnn())
    result = ckptdiff.remap(tmp_path / "m.safetensors.index.json", renamed,
                            tmp_path / "out.safetensors")
    assert result.report.compatible, result.report.to_text()
    assert same_values(safetensors_torch.load_file(tmp_path / "out.safetensors"), renamed)


def test_keras_kernels_are_reordered_for_torch(tmp_path: Path) -> None:
    keras = pytest.importorskip("keras", reason="keras is not installed")
    numpy = pytest.importorskip("numpy")
    source = keras.Sequential([keras.Input((6, 6, 3)), keras.layers.Conv2D(8, 3, name="conv"),
                               keras.layers.Flatten(), keras.layers.Dense(10, name="fc")])
    rng = numpy.random.default_rng(0)
    for weight in source.weights:
        weight.assign(rng.standard_normal(weight.shape).astype("float32"))
    source.save_weights(tmp_path / "k.weights.h5")

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3)
            self.fc = nn.Linear(128, 10)

    model = Net()
    result = ckptdiff.remap(tmp_path / "k.weights.h5", model, tmp_path / "net.safetensors")
    assert result.report.compatible and result.transformed == 2
    written = safetensors_torch.load_file(tmp_path / "net.safetensors")
    kernels = {w.path.split("/")[-2]: numpy.asarray(w) for w in source.weights
               if w.path.endswith("kernel")}
    assert numpy.array_equal(written["conv.weight"].numpy(),
                             kernels["conv"].transpose(3, 2, 0, 1))
    assert numpy.array_equal(written["fc.weight"].numpy(), kernels["fc"].T)


def test_a_tensor_displaced_by_a_rename_is_left_out(tmp_path: Path) -> None:
    source = {"net.0.weight": torch.ones(8, 4), "net.2.weight": torch.full((16, 8), 2.0),
              "net.4.weight": torch.full((2, 16), 3.0)}
    target = nn.Module()
    target.net = nn.Sequential(nn.Linear(4, 8, bias=False), nn.ReLU(), nn.Linear(8, 8, bias=False),
                               nn.ReLU(), nn.Linear(8, 16, bias=False), nn.ReLU(),
                               nn.Linear(16, 2, bias=False))
    torch.save(source, tmp_path / "s.pth")
    result = ckptdiff.remap(tmp_path / "s.pth", target, tmp_path / "o.safetensors")
    written = safetensors_torch.load_file(tmp_path / "o.safetensors")
    assert torch.equal(written["net.4.weight"], source["net.2.weight"])
    assert torch.equal(written["net.6.weight"], source["net.4.weight"])
    assert [f.key for f in result.report.findings if f.severity == "error"] == ["net.2.weight"]


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ckptdiff", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_cli_exit_codes(tmp_path: Path) -> None:
    (tmp_path / "net.py").write_text(
        "from torch import nn\n"
        "def build(classes=10):\n"
        "    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), "
        "nn.Flatten(), nn.Linear(32, classes))\n")
    dataparallel_checkpoint(tmp_path / "dp.pth", cnn())
    ok = cli("remap", "dp.pth", "net.py:build", "-o", "fixed.safetensors", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "compatible" in ok.stdout and "9 renamed" in ok.stderr
    still = cli("remap", "dp.pth", "net.py:build", "--model-kwargs", '{"classes": 5}', "-o",
                "five.safetensors", cwd=tmp_path)
    assert still.returncode == 1 and "4.{weight,bias}" in still.stdout
    assert "shapes differ: [10, 32] vs [5, 32]" in still.stdout
    bad = cli("remap", "dp.pth", "net.py:build", "-o", "out.txt", cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr
    (tmp_path / "m.json").write_text(ckptdiff.read(tmp_path / "fixed.safetensors").to_json())
    unsupported = cli("remap", "m.json", "net.py:build", "-o", "x.safetensors", cwd=tmp_path)
    assert unsupported.returncode == 2 and "holds no weights" in unsupported.stderr


class _Router(nn.Module):  # type: ignore[misc]
    """An MoE router with a zero correction buffer (HY-V3's ``expert_bias`` in the hub files)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = nn.Linear(8, 3, bias=False)
        self.register_buffer("e_score_correction_bias", torch.zeros(3))


class _MoeBlock(nn.Module):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.q_proj, self.o_proj = nn.Linear(8, 8), nn.Linear(8, 8)
        self.mlp = _Router()


def test_a_zero_buffer_renamed_alone_is_remapped_so_the_model_loads_strictly(
        tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = nn.ModuleDict({"layers": nn.ModuleList([_MoeBlock()])})  # one MoE layer
    state = {k.replace("mlp.e_score_correction_bias", "mlp.expert_bias"): v.clone()
             for k, v in model.state_dict().items()}
    safetensors_torch.save_file(state, str(tmp_path / "hub.safetensors"))
    result = ckptdiff.remap(tmp_path / "hub.safetensors", model, tmp_path / "fixed.safetensors")
    assert result.before is not None
    (suggestion,) = result.before.suggestions
    assert "one open pair of its shape" in suggestion.rule  # one key: no learned rule holds
    assert result.report.compatible
    written = safetensors_torch.load_file(tmp_path / "fixed.safetensors")
    model.load_state_dict(written, strict=True)
    assert same_values(written, model)
