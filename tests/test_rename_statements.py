"""A declined entry's ``statements``: for each reading the rules-file fragment that states it,
read by the real rules-file parser, performed by ``remap --rules``, shown paste-ready."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from tests.helpers import manifest, t
from tests.test_rename_ambiguity import exaone_like

from ckptdiff.diffing.match import diff_manifests
from ckptdiff.diffing.report import Report
from ckptdiff.fix import rules_file
from ckptdiff.manifest import TensorInfo
from ckptdiff.rename.plan import plan_renames
from ckptdiff.rename.results import Conversion, ConversionOp, Rule, Statement, Unpaired
from ckptdiff.rename.statements import key_renames, merged, segment_renames, stated_lines
from ckptdiff.render.json import JsonRenderer
from ckptdiff.render.markdown import MarkdownRenderer
from ckptdiff.render.table import TableRenderer

HIDDEN = 8


def qkv_report(layers: int = 1) -> Report:
    source = manifest(*(t(f"enc.{i}.attn.Wqkv.weight", 3 * HIDDEN, HIDDEN)
                        for i in range(layers)))
    target = manifest(*(t(f"enc.{i}.attn.{w}.weight", HIDDEN, HIDDEN)
                        for i in range(layers) for w in "qkv"))
    return diff_manifests(source, target)


def siblings_report() -> Report:
    source, target = exaone_like(("c_fc_0", "c_fc_1"))
    return diff_manifests(manifest(*source), manifest(*target))


def loaded(fragment: dict[str, Any], tmp_path: Path,
           written: dict[str, Any] | None = None) -> rules_file.RulesFile:
    """The fragment pasted into a rules file (its rules first), read by the real parser."""
    document = dict(written or {"schema": rules_file.RULES_SCHEMA, "rules": []})
    document["rules"] = fragment.get("rules", []) + document.get("rules", [])
    document["conversions"] = document.get("conversions", []) + fragment.get("conversions", [])
    path = tmp_path / "stated.rules.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return rules_file.load(path)


def test_a_blocked_qkv_statement_is_a_conversion_the_parser_reads(tmp_path: Path) -> None:
    (entry,) = qkv_report().unpaired
    blocked, interleaved = entry.statements
    assert interleaved is None  # no op performs an interleaved layout
    assert blocked is not None
    parsed = loaded(blocked.to_dict(), tmp_path)
    (conversion,) = parsed.conversions
    assert conversion.sources == ("enc.0.attn.Wqkv.weight",)
    assert conversion.targets == tuple(f"enc.0.attn.{w}.weight" for w in "qkv")
    assert conversion.ops == (ConversionOp("chunk", dim=0, parts=3, sizes=(HIDDEN,) * 3),)


def test_sibling_statements_rename_every_block_and_nothing_else(tmp_path: Path) -> None:
    entry = next(u for u in siblings_report().unpaired if len(u.readings) == 2)
    first, second = (s.to_dict() for s in entry.statements if s is not None)
    parsed = loaded(first, tmp_path)
    for layer in (0, 1):
        assert parsed.rename(f"transformer.h.{layer}.mlp.c_fc_0.weight") == (
            f"transformer.h.{layer}.mlp.gate_proj.weight")
        assert parsed.rename(f"transformer.h.{layer}.mlp.c_fc_1.bias") == (
            f"transformer.h.{layer}.mlp.up_proj.bias")
    # A segment that only contains the name, or a longer number, is another tensor.
    for other in ("h.0.mlp.c_fc_00.weight", "h.0.mlp.xc_fc_0.weight", "h.0.c_fc_0x.weight"):
        assert parsed.rename(other) == other
    assert loaded(second, tmp_path).rename("h.0.mlp.c_fc_0.weight") == "h.0.mlp.up_proj.weight"


def _save(path: Path, infos: list[TensorInfo], seed: int) -> dict[str, Any]:
    torch = pytest.importorskip("torch")
    safetensors_torch = pytest.importorskip("safetensors.torch")
    generator = torch.Generator().manual_seed(seed)
    tensors = {i.key: torch.randn(*i.shape, generator=generator) for i in infos}
    safetensors_torch.save_file(tensors, str(path))
    return tensors


def test_remap_by_a_pasted_sibling_statement_fixes_the_checkpoint(tmp_path: Path) -> None:
    from ckptdiff import remap

    source_infos, target_infos = exaone_like(("c_fc_0", "c_fc_1"))
    source, target = tmp_path / "hub.safetensors", tmp_path / "model.safetensors"
    saved = _save(source, source_infos, 0)
    _save(target, target_infos, 1)
    rules = tmp_path / "rules.json"
    first = remap(source, target, tmp_path / "first.safetensors", rules=rules)
    assert first.before is not None and not first.report.compatible
    entry = next(u for u in first.before.unpaired if len(u.readings) == 2)
    second = entry.statements[1]  # c_fc_0 → up_proj, c_fc_1 → gate_proj: this user's truth
    assert second is not None
    written = json.loads(rules.read_text())
    document = {**written, "rules": second.to_dict()["rules"] + written["rules"]}
    rules.write_text(json.dumps(document), encoding="utf-8")
    stated = remap(source, target, tmp_path / "fixed.safetensors", rules=rules)
    assert stated.rules_action == "applied" and stated.report.compatible
    import safetensors.torch as safetensors_torch
    import torch

    out = safetensors_torch.load_file(str(tmp_path / "fixed.safetensors"))
    for layer in (0, 1):
        assert torch.equal(out[f"model.layers.{layer}.mlp.up_proj.weight"],
                           saved[f"transformer.h.{layer}.mlp.c_fc_0.weight"])
        assert torch.equal(out[f"model.layers.{layer}.mlp.gate_proj.weight"],
                           saved[f"transformer.h.{layer}.mlp.c_fc_1.weight"])


def test_remap_by_a_pasted_qkv_statement_splits_every_layer(tmp_path: Path) -> None:
    from ckptdiff import remap

    source, target = tmp_path / "hub.safetensors", tmp_path / "model.safetensors"
    saved = _save(source, [t(f"enc.{i}.attn.Wqkv.weight", 3 * HIDDEN, HIDDEN) for i in (0, 1)], 0)
    _save(target, [t(f"enc.{i}.attn.{w}.weight", HIDDEN, HIDDEN) for i in (0, 1) for w in "qkv"],
          1)
    rules = tmp_path / "rules.json"
    first = remap(source, target, tmp_path / "first.safetensors", rules=rules)
    assert first.before is not None
    entries = [u for u in first.before.unpaired if u.statements]
    assert len(entries) == 2  # one per layer, as the conversions are
    (line,) = stated_lines(entries)  # the interleaved reading has none
    fragment = json.loads(line.split(": ", 1)[1])
    assert len(fragment["conversions"]) == 2  # both layers in one paste
    document = json.loads(rules.read_text())
    document["conversions"] = fragment["conversions"]
    rules.write_text(json.dumps(document), encoding="utf-8")
    stated = remap(source, target, tmp_path / "fixed.safetensors", rules=rules)
    assert stated.report.compatible
    import safetensors.torch as safetensors_torch
    import torch

    out = safetensors_torch.load_file(str(tmp_path / "fixed.safetensors"))
    for i in (0, 1):
        for w, part in zip("qkv", saved[f"enc.{i}.attn.Wqkv.weight"].chunk(3), strict=True):
            assert torch.equal(out[f"enc.{i}.attn.{w}.weight"], part)


def test_statements_validate_against_the_report_schema(report_schema: dict[str, Any]) -> None:
    for report in (qkv_report(), siblings_report()):
        document = json.loads(JsonRenderer().render(report))
        jsonschema.validate(document, report_schema)
        declined = [u for u in document["unpaired"] if u["readings"]]
        assert declined and all(len(u["statements"]) == len(u["readings"]) for u in declined)
    bad = json.loads(JsonRenderer().render(qkv_report()))
    bad["unpaired"][0]["statements"][0] = {"renames": []}  # not the rules file's shape
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, report_schema)


def test_table_and_markdown_print_one_paste_line_per_statable_reading() -> None:
    report = siblings_report()
    table = TableRenderer().render(report, width=100)
    markdown = MarkdownRenderer().render(report)
    pasted = [line for line in table.splitlines() if "in a `remap --rules` file" in line]
    assert len(pasted) == 2  # once for the group of blocks, not once per key
    fragment = json.loads(pasted[0].split("(rules first): ", 1)[1])  # not folded at the width
    assert fragment["rules"][0]["replacement"] == r"\g<1>gate_proj"
    (code_span,) = re.findall(r"reading 1 in a `remap --rules` file \(rules first\): `([^`]*)`",
                              markdown)
    assert json.loads(code_span) == fragment  # literal: no escaping of pipes or backslashes
    qkv = TableRenderer().render(qkv_report(), width=400)
    assert "reading 1 in a `remap --rules` file" in qkv
    assert "reading 2 in a `remap --rules` file" not in qkv  # interleaved: no fragment
    assert "an interleaved layout has no op yet" in qkv  # the hint says why


def test_entries_without_readings_print_no_paste_line() -> None:
    source = manifest(t("a.weight", 4, 4))
    target = manifest(t("b.bias", 4, 4))
    report = diff_manifests(source, target)
    text = TableRenderer().render(report, width=200) + MarkdownRenderer().render(report)
    assert "remap --rules` file (rules first)" not in text
    assert all(u.statements == () for u in report.unpaired)


def test_segment_rules_that_would_rename_each_others_work_are_not_stated() -> None:
    assert segment_renames([("w1", "w2"), ("w2", "w1")]) is None
    stated = segment_renames([("fc11", "up_proj"), ("fc12", "gate_proj")])
    assert stated is not None and len(stated.rules) == 2


def test_a_target_side_tie_states_source_to_target() -> None:
    rule = key_renames([("old.weight", "new.weight")]).rules[0]
    assert re.sub(rule.pattern, rule.replacement, "old.weight") == "new.weight"
    assert re.sub(rule.pattern, rule.replacement, "x.old.weight") == "x.old.weight"  # whole key
    # w1/w3 over gate/up tie on both sides: every reading renames a source key into a target.
    source = [t(f"layers.{i}.ffn.{w}.weight", 16, 8) for i in range(4) for w in ("w1", "w3")]
    target = [t(f"layers.{i}.ffn.{w}.weight", 16, 8) for i in range(4) for w in ("gate", "up")]
    sources, targets = {x.key for x in source}, {x.key for x in target}
    unpaired = diff_manifests(manifest(*source), manifest(*target)).unpaired
    sides = {u.source_key is None for u in unpaired if u.statements}
    assert sides == {True, False}
    for entry in unpaired:
        assert len(entry.statements) == len(entry.readings)
        for stated in entry.statements:
            assert stated is not None
            (made,) = stated.rules
            assert made.replacement in targets
            assert [k for k in sources if re.fullmatch(made.pattern, k)] != []
            if entry.target_key is not None:
                assert made.replacement == entry.target_key


def test_merged_fragments_keep_each_rule_once_and_every_conversion() -> None:
    rule = Rule("a", "b", 0)
    one = Statement((rule,), (Conversion(("x",), ("y", "z"), (ConversionOp("chunk", 0, 2),),
                                         1.0, "r"),))
    two = Statement((rule,), (Conversion(("x2",), ("y2", "z2"), (ConversionOp("chunk", 0, 2),),
                                         1.0, "r"),))
    both = merged([one, two, one])
    assert both.rules == (rule,) and len(both.conversions) == 2
    entry = Unpaired("x", None, "why", ("y",), ("r1", "r2"), (one, None))
    assert stated_lines([entry]) and stated_lines([entry, Unpaired(
        "x2", None, "why", ("y2",), ("r1", "r2"), (None, None))]) == []


def test_a_stacked_join_states_its_whole_ops_where_the_prose_names_only_the_join(
        tmp_path: Path) -> None:
    from ckptdiff import remap

    source, target = tmp_path / "hub.safetensors", tmp_path / "model.safetensors"
    saved = _save(source, [t(f"l.0.moe.experts.{e}.{w}.weight", 4, HIDDEN) for e in range(2)
                           for w in ("gate_proj", "up_proj")], 0)
    _save(target, [t("l.0.moe.experts.w12", 2, 8, HIDDEN)], 1)
    rules = tmp_path / "rules.json"
    first = remap(source, target, tmp_path / "first.safetensors", rules=rules)
    assert first.before is not None
    (entry,) = (u for u in first.before.unpaired if u.statements)
    gate_first, up_first = entry.statements
    assert gate_first is not None and up_first is not None
    (made,) = up_first.conversions
    assert [op.op for op in made.ops] == ["concat", "stack"]  # per expert, then stacked
    document = json.loads(rules.read_text())
    document["conversions"] = up_first.to_dict()["conversions"]
    rules.write_text(json.dumps(document), encoding="utf-8")
    stated = remap(source, target, tmp_path / "fixed.safetensors", rules=rules)
    assert stated.report.compatible
    import safetensors.torch as safetensors_torch
    import torch

    out = safetensors_torch.load_file(str(tmp_path / "fixed.safetensors"))
    expected = torch.stack([torch.cat([saved[f"l.0.moe.experts.{e}.up_proj.weight"],
                                       saved[f"l.0.moe.experts.{e}.gate_proj.weight"]])
                            for e in range(2)])
    assert torch.equal(out["l.0.moe.experts.w12"], expected)


def test_every_readings_prose_names_the_ops_its_statement_performs() -> None:
    # A stacked join's parts order is open: the prose once said only "concat", while the
    # statement (rightly) concatenates per expert and then stacks.
    source = [t(f"l.0.moe.experts.{e}.{w}.weight", 4, HIDDEN) for e in range(2)
              for w in ("gate_proj", "up_proj")]
    target = [t("l.0.moe.experts.w12", 2, 8, HIDDEN)]
    plan = plan_renames(source, target, source_all=source, target_all=target)
    (entry,) = (u for u in plan.unpaired if u.statements)
    for reading, statement in zip(entry.readings, entry.statements, strict=True):
        assert statement is not None
        (made,) = statement.conversions
        prose = json.loads(reading.split("conversion ops ", 1)[1].removesuffix(")"))
        assert prose == [op.to_dict() for op in made.ops]
        assert [op["op"] for op in prose] == ["concat", "stack"]
