"""Real checkpoints against real models, through the public API and the CLI."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

import ckptdiff
from ckptdiff.errors import IncompatibleError

torch = pytest.importorskip("torch", reason="torch is not installed")
nn = torch.nn


def cnn(width: int = 8, classes: int = 10) -> Any:
    return nn.Sequential(nn.Conv2d(3, width, 3), nn.BatchNorm2d(width), nn.ReLU(),
                         nn.Flatten(), nn.Linear(width * 4, classes))


def test_state_dict_loads_into_the_model_that_wrote_it(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.pth"
    torch.save(cnn().state_dict(), path)
    report = ckptdiff.diff(path, cnn)
    assert report.compatible, report.to_text()
    assert report.findings == ()
    assert report.summary["matched"] == len(cnn().state_dict())
    report.raise_if_incompatible()


def test_lightning_checkpoint_with_dataparallel_prefix(tmp_path: Path) -> None:
    model = cnn()
    state = {"module." + k: v for k, v in model.state_dict().items()}
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.randn(2, 3, 4, 4)).sum().backward()
    optimizer.step()
    path = tmp_path / "lightning.ckpt"
    torch.save({"epoch": 3, "global_step": 10, "state_dict": state,
                "optimizer_states": [optimizer.state_dict()]}, path)
    report = ckptdiff.diff(path, cnn)
    assert not report.compatible
    assert report.source.container_key == "state_dict"
    pairs = {(s.source_key, s.target_key) for s in report.suggestions}
    assert ("module.0.weight", "0.weight") in pairs
    assert len(pairs) == len(state)
    assert [(r.pattern, r.replacement) for r in report.rules] == [("^module\\.", "")]
    # Optimizer slots are listed, never reported as unexpected errors against a live model.
    assert not any(f.kind == "unexpected" and "exp_avg" in f.key for f in report.findings)
    with pytest.raises(IncompatibleError, match="strip|module"):
        report.raise_if_incompatible()


def test_resized_head_is_a_shape_error(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.pth"
    torch.save(cnn(classes=5).state_dict(), path)
    report = ckptdiff.diff(path, cnn)
    assert [(f.kind, f.key) for f in report.findings if f.severity == "error"] == [
        ("shape", "4.weight"), ("shape", "4.bias")]
    assert ckptdiff.diff(path, cnn, ignore=["4.*"]).compatible
    assert ckptdiff.diff(path, cnn, model_kwargs={"classes": 5}).compatible


def test_bf16_checkpoint_is_a_dtype_warning(tmp_path: Path) -> None:
    path = tmp_path / "bf16.pth"
    torch.save({k: v.to(torch.bfloat16) if v.is_floating_point() else v
                for k, v in cnn().state_dict().items()}, path)
    report = ckptdiff.diff(path, cnn)
    assert report.compatible
    assert {f.kind for f in report.findings} == {"dtype"}
    assert all(f.severity == "warning" for f in report.findings)


def _relocate_to_cuda(path: Path) -> None:
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    pkl = next(name for name in members if name.endswith("data.pkl"))
    members[pkl] = members[pkl].replace(b"X\x03\x00\x00\x00cpu", b"X\x06\x00\x00\x00cuda:0")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    path.write_bytes(buffer.getvalue())


def test_gpu_saved_checkpoint_is_a_device_warning(tmp_path: Path) -> None:
    path = tmp_path / "gpu.pth"
    torch.save(cnn().state_dict(), path)
    _relocate_to_cuda(path)
    manifest = ckptdiff.read(path)
    assert {t.device for t in manifest} == {"cuda:0"}
    report = ckptdiff.diff(path, cnn)
    assert report.compatible
    assert {f.kind for f in report.findings} == {"device"}
    assert "map_location" in (report.findings[0].note or "")


def test_hf_sharded_safetensors_against_bert(tmp_path: Path) -> None:
    transformers = pytest.importorskip("transformers", reason="transformers is not installed")
    config = transformers.BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2,
                                     num_attention_heads=2, intermediate_size=37)
    model = transformers.BertForMaskedLM(config)
    model.save_pretrained(tmp_path / "bert", max_shard_size="100KB")
    assert (tmp_path / "bert" / "model.safetensors.index.json").exists()
    report = ckptdiff.diff(tmp_path / "bert", model)
    assert report.compatible, report.to_text()
    errors = [f for f in report.findings if f.severity != "info"]
    assert errors == []
    tied = [f for f in report.findings if f.tied_to]
    assert all(f.kind == "missing" and f.severity == "info" for f in tied)
    # A model with a different vocabulary does not fit: the embedding and decoder say so.
    bigger = transformers.BertForMaskedLM(transformers.BertConfig(
        vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=37))
    shapes = {f.key for f in ckptdiff.diff(tmp_path / "bert", bigger).findings
              if f.kind == "shape"}
    assert "bert.embeddings.word_embeddings.weight" in shapes


def test_cli_diff_file_against_model_spec(tmp_path: Path,
                                          report_schema: dict[str, object]) -> None:
    import jsonschema

    (tmp_path / "models.py").write_text(
        "from torch import nn\n"
        "def build(classes=10):\n"
        "    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, classes))\n")
    sys.path.insert(0, str(tmp_path))
    try:
        import models  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(tmp_path))
    torch.save({"model": models.build(classes=3).state_dict()}, tmp_path / "ckpt.pth")
    result = subprocess.run([sys.executable, "-m", "ckptdiff", "diff", "ckpt.pth",
                             "models:build", "--format", "json"],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    document = json.loads(result.stdout)
    jsonschema.validate(document, report_schema)
    assert document["source"]["container_key"] == "model"
    assert {f["key"] for f in document["findings"]} == {"2.weight", "2.bias"}
    ok = subprocess.run([sys.executable, "-m", "ckptdiff", "diff", "ckpt.pth", "models:build",
                         "--model-kwargs", '{"classes": 3}'], capture_output=True, text=True,
                        cwd=tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
