"""What ckptdiff declines as ambiguous is shown with its readings, and a user can state one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.helpers import manifest, t

from ckptdiff.diffing.match import diff_manifests
from ckptdiff.diffing.report import Report
from ckptdiff.errors import CkptdiffError
from ckptdiff.render.markdown import MarkdownRenderer
from ckptdiff.render.table import TableRenderer

HIDDEN = 8


def qkv_report() -> Report:
    source = manifest(t("enc.0.attn.Wqkv.weight", 3 * HIDDEN, HIDDEN))
    target = manifest(*(t(f"enc.0.attn.{w}.weight", HIDDEN, HIDDEN) for w in "qkv"))
    return diff_manifests(source, target)


def test_table_and_markdown_show_each_reading_and_how_to_state_one() -> None:
    report = qkv_report()
    table = TableRenderer().render(report, width=400)
    markdown = MarkdownRenderer().render(report)
    for text in (table, markdown):
        assert "Declined as ambiguous" in text
        assert "reading 1: blocked: q,k,v one after another along dim 0" in text
        assert "reading 2: interleaved per head" in text
        assert "remap --rules" in text
    assert "Left unpaired on purpose" not in table  # the same entry is not listed twice


def test_a_stated_blocked_split_is_performed_from_the_rules_file(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    safetensors_torch = pytest.importorskip("safetensors.torch")
    from ckptdiff import remap

    fused = torch.randn(3 * HIDDEN, HIDDEN, generator=torch.Generator().manual_seed(0))
    source = tmp_path / "hub.safetensors"
    safetensors_torch.save_file({"enc.0.attn.Wqkv.weight": fused}, str(source))
    target = tmp_path / "model.safetensors"
    safetensors_torch.save_file({f"enc.0.attn.{w}.weight": torch.zeros(HIDDEN, HIDDEN)
                                 for w in "qkv"}, str(target))
    rules = tmp_path / "rules.json"
    written = remap(source, target, tmp_path / "first.safetensors", rules=rules)
    assert not written.report.compatible  # declined: nothing converted
    document = json.loads(rules.read_text())
    assert "conversions" not in document
    assert written.before is not None
    (entry,) = written.before.unpaired
    ops = json.loads(entry.readings[0].split("conversion ops ")[1].rstrip(")"))
    document["conversions"] = [{"sources": ["enc.0.attn.Wqkv.weight"],
                                "targets": [f"enc.0.attn.{w}.weight" for w in "qkv"],
                                "ops": ops}]
    rules.write_text(json.dumps(document))
    stated = remap(source, target, tmp_path / "fixed.safetensors", rules=rules)
    assert stated.rules_action == "applied" and stated.report.compatible
    out = safetensors_torch.load_file(str(tmp_path / "fixed.safetensors"))
    for w, expected in zip("qkv", fused.chunk(3, dim=0), strict=True):
        assert torch.equal(out[f"enc.0.attn.{w}.weight"], expected)


def test_a_rules_file_conversion_of_an_absent_key_is_one_clear_error(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    safetensors_torch = pytest.importorskip("safetensors.torch")
    from ckptdiff import remap

    source = tmp_path / "hub.safetensors"
    safetensors_torch.save_file({"a.weight": torch.zeros(2, 2)}, str(source))
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"schema": "ckptdiff.rules/1", "rules": [], "conversions": [
        {"sources": ["nope.weight"], "targets": ["a.weight", "b.weight"],
         "ops": [{"op": "chunk", "dim": 0, "parts": 2, "sizes": [1, 1]}]}]}))
    with pytest.raises(CkptdiffError, match="'nope.weight'"):
        remap(source, source, tmp_path / "out.safetensors", rules=rules)
    rules.write_text(json.dumps({"schema": "ckptdiff.rules/1", "conversions": [
        {"sources": ["a.weight"], "targets": ["b"], "ops": [{"op": "reshape"}]}]}))
    with pytest.raises(CkptdiffError, match="unknown conversion op 'reshape'"):
        remap(source, source, tmp_path / "out.safetensors", rules=rules)


def test_written_rules_carry_the_diffs_conversions(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    safetensors_torch = pytest.importorskip("safetensors.torch")
    from ckptdiff import remap

    parts = {f"l.0.moe.experts.{e}.w{n}.weight": torch.randn(4, HIDDEN)
             for e in range(2) for n in (1, 3)}
    source = tmp_path / "hub.safetensors"
    safetensors_torch.save_file(parts, str(source))
    target = tmp_path / "model.safetensors"
    safetensors_torch.save_file({"l.0.moe.experts.gate_up_proj": torch.zeros(2, 8, HIDDEN)},
                                str(target))
    rules = tmp_path / "rules.json"
    first = remap(source, target, tmp_path / "a.safetensors", rules=rules)
    assert first.report.compatible
    assert len(json.loads(rules.read_text())["conversions"]) == 1
    again = remap(source, target, tmp_path / "b.safetensors", rules=rules)
    assert again.rules_action == "applied" and again.report.compatible
    a = safetensors_torch.load_file(str(tmp_path / "a.safetensors"))
    b = safetensors_torch.load_file(str(tmp_path / "b.safetensors"))
    assert torch.equal(a["l.0.moe.experts.gate_up_proj"], b["l.0.moe.experts.gate_up_proj"])
