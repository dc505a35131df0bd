"""Every entry of a rules file either does what it says or is refused in one line: a transform
of a conversion's target reorders the converted tensor, a conversion op is checked field by field
at load, and an entry that nothing would apply (a transform of a key no tensor ends up under, a
conversion whose target a rule also makes) stops ``remap --rules`` before anything is written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ckptdiff.cli.app import app

torch = pytest.importorskip("torch")
safetensors_torch = pytest.importorskip("safetensors.torch")

HIDDEN = 8
FUSED = "enc.0.attn.Wqkv.weight"
QKV = [f"enc.0.attn.{w}.weight" for w in "qkv"]
EXPERTS = [f"l.0.experts.{e}.w1.weight" for e in range(2)]
STACKED = "l.0.experts.gate_proj"


def _save(path: Path, tensors: dict[str, Any]) -> Path:
    safetensors_torch.save_file({k: v.contiguous() for k, v in tensors.items()}, str(path))
    return path


def _remap(tmp_path: Path, source: dict[str, Any], target: dict[str, Any],
           document: dict[str, Any]) -> tuple[int, str, Path]:
    """Exit code, stderr and the output path of ``ckptdiff remap --rules`` on the tensors."""
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"schema": "ckptdiff.rules/1", "rules": [], **document}))
    out = tmp_path / "out.safetensors"
    result = CliRunner().invoke(app, [
        "remap", str(_save(tmp_path / "src.safetensors", source)),
        str(_save(tmp_path / "model.safetensors", target)), "-o", str(out), "--rules", str(rules)])
    return result.exit_code, result.stderr, out


def _refused(tmp_path: Path, source: dict[str, Any], target: dict[str, Any],
             document: dict[str, Any]) -> str:
    code, stderr, out = _remap(tmp_path, source, target, document)
    assert code == 2, stderr
    assert "Traceback" not in stderr
    (line,) = stderr.strip().splitlines()
    assert line.startswith(f"ckptdiff: error: {tmp_path / 'rules.json'}: ")
    assert not out.exists()
    return line


def _fused() -> dict[str, Any]:
    return {FUSED: torch.randn(3 * HIDDEN, HIDDEN, generator=torch.Generator().manual_seed(0))}


def _experts() -> dict[str, Any]:
    generator = torch.Generator().manual_seed(1)
    return {k: torch.randn(4, HIDDEN, generator=generator) for k in EXPERTS}


SPLIT = {"sources": [FUSED], "targets": QKV,
         "ops": [{"op": "chunk", "dim": 0, "parts": 3, "sizes": [HIDDEN] * 3}]}
STACK = {"sources": EXPERTS, "targets": [STACKED], "ops": [{"op": "stack", "dim": 0}]}
SQUARE = {k: torch.zeros(HIDDEN, HIDDEN) for k in QKV}


def test_a_transform_of_a_stacked_target_reorders_the_stacked_tensor(tmp_path: Path) -> None:
    experts = _experts()
    code, stderr, out = _remap(tmp_path, experts, {STACKED: torch.zeros(2, HIDDEN, 4)},
                               {"conversions": [STACK], "transforms": {STACKED: [0, 2, 1]}})
    assert code == 0, stderr
    written = safetensors_torch.load_file(str(out))[STACKED]
    assert torch.equal(written, torch.stack([experts[k] for k in EXPERTS]).transpose(1, 2))


def test_a_transform_of_one_split_target_reorders_that_piece_only(tmp_path: Path) -> None:
    fused = _fused()
    code, stderr, out = _remap(tmp_path, fused, SQUARE,
                               {"conversions": [SPLIT], "transforms": {QKV[1]: [1, 0]}})
    assert code == 0, stderr
    written = safetensors_torch.load_file(str(out))
    q, k, v = fused[FUSED].chunk(3)
    assert torch.equal(written[QKV[0]], q) and torch.equal(written[QKV[2]], v)
    assert torch.equal(written[QKV[1]], k.T)


def test_a_transform_that_does_not_fit_the_converted_tensor_is_refused(tmp_path: Path) -> None:
    line = _refused(tmp_path, _experts(), {STACKED: torch.zeros(2, HIDDEN, 4)},
                    {"conversions": [STACK], "transforms": {STACKED: [1, 0]}})
    assert f"transform of {STACKED!r}: [1, 0] does not fit the converted tensor [2, 4, 8]" in line


def test_a_transform_of_a_key_no_tensor_ends_up_under_is_refused(tmp_path: Path) -> None:
    line = _refused(tmp_path, _fused(), SQUARE,
                    {"conversions": [SPLIT], "transforms": {"enc.0.attn.o.weight": [1, 0]}})
    assert "transform of 'enc.0.attn.o.weight': no tensor ends up under that key" in line


def test_a_transform_of_a_source_a_conversion_consumes_is_refused(tmp_path: Path) -> None:
    line = _refused(tmp_path, _fused(), SQUARE,
                    {"conversions": [SPLIT], "transforms": {FUSED: [1, 0]}})
    assert f"transform of {FUSED!r}: no tensor ends up under that key" in line


def test_a_transform_of_a_renamed_key_still_applies(tmp_path: Path) -> None:
    weight = torch.randn(3, 5)
    code, stderr, out = _remap(
        tmp_path, {"module.fc.weight": weight}, {"fc.weight": torch.zeros(5, 3)},
        {"rules": [{"pattern": "^module\\.", "replacement": ""}],
         "transforms": {"fc.weight": [1, 0]}})
    assert code == 0, stderr
    assert torch.equal(safetensors_torch.load_file(str(out))["fc.weight"], weight.T)


def test_a_conversion_of_a_key_the_checkpoint_lacks_names_the_conversion(tmp_path: Path) -> None:
    absent = {**SPLIT, "sources": ["enc.0.attn.in_proj.weight"]}
    line = _refused(tmp_path, _fused(), SQUARE, {"conversions": [absent]})
    assert f"conversion making {QKV[0]!r} names 'enc.0.attn.in_proj.weight'" in line


def test_a_rule_renaming_to_a_conversion_target_is_refused(tmp_path: Path) -> None:
    source = {**_fused(), "enc.0.attn.query.weight": torch.zeros(HIDDEN, HIDDEN)}
    line = _refused(tmp_path, source, SQUARE, {
        "rules": [{"pattern": "\\.query\\.", "replacement": ".q."}], "conversions": [SPLIT]})
    assert f"the rules also rename 'enc.0.attn.query.weight' to {QKV[0]!r}" in line


def test_a_chunk_with_parts_only_splits_in_equal_parts(tmp_path: Path) -> None:
    fused = _fused()
    equal = {**SPLIT, "ops": [{"op": "chunk", "dim": 0, "parts": 3}]}
    code, stderr, out = _remap(tmp_path, fused, SQUARE, {"conversions": [equal]})
    assert code == 0, stderr
    written = safetensors_torch.load_file(str(out))
    for key, piece in zip(QKV, fused[FUSED].chunk(3), strict=True):
        assert torch.equal(written[key], piece)


def test_equal_parts_of_a_dim_they_do_not_divide_are_refused(tmp_path: Path) -> None:
    source = {FUSED: torch.zeros(3 * HIDDEN + 1, HIDDEN)}
    equal = {**SPLIT, "ops": [{"op": "chunk", "dim": 0, "parts": 3}]}
    line = _refused(tmp_path, source, SQUARE, {"conversions": [equal]})
    assert (f"conversion making {QKV[0]!r}: chunk into 3 equal parts along dim 0: the tensor "
            "has 25 there, which 3 does not divide") in line


def test_sizes_that_do_not_add_up_name_the_file_and_the_conversion(tmp_path: Path) -> None:
    short = {**SPLIT, "ops": [{"op": "chunk", "dim": 0, "sizes": [HIDDEN, HIDDEN, 1]}]}
    line = _refused(tmp_path, _fused(), SQUARE, {"conversions": [short]})
    assert f"conversion making {QKV[0]!r}: chunk sizes [8, 8, 1] do not add up to 24" in line


def _ops(*ops: dict[str, Any], targets: list[str] = QKV) -> dict[str, Any]:
    return {"conversions": [{"sources": [FUSED], "targets": targets, "ops": list(ops)}]}


@pytest.mark.parametrize(("document", "says"), [
    (_ops({"op": "chunk", "dim": 0}), "op 1 (chunk) needs 'parts' (equal parts) or 'sizes'"),
    (_ops({"op": "chunk", "parts": 3}), "op 1 (chunk) needs 'dim'"),
    (_ops({"op": "chunk", "dim": 0, "parts": 3, "sizes": [12, 12]}),
     "op 1 (chunk) has parts 3 but 2 sizes"),
    (_ops({"op": "chunk", "dim": 0, "sizes": [12, 12]}),
     "the ops make 2 tensor(s) of the 1 source(s), and there are 3 targets"),
    (_ops({"op": "chunk", "dim": 0, "parts": 3, "per": "head"}),
     "op 1 (chunk) does not take 'per'"),
    (_ops({"op": "chunk", "dim": 0.5, "parts": 3}), "op 1 (chunk) dim is 0.5, not a whole"),
    (_ops({"op": "chunk", "dim": -1, "parts": 3}), "op 1 (chunk) dim is -1, not a whole"),
    (_ops({"op": "chunk", "dim": 0, "parts": 3, "sizes": [8, -8, 24]}),
     "op 1 (chunk) sizes entry is -8"),
    (_ops({"op": "concat"}, targets=QKV[:1]), "op 1 (concat) needs 'dim'"),
    (_ops({"op": "stack", "dim": 0, "per": "expert"}, targets=QKV[:1]),
     "op 1 (stack) does not take 'per'"),
    (_ops({"op": "chunk", "dim": 0, "parts": 3}, {"op": "transpose"}),
     "op 2 (transpose) needs 'dims'"),
    (_ops({"op": "chunk", "dim": 0, "parts": 3}, {"op": "transpose", "dims": [0, 1, 2]}),
     "op 2 (transpose) dims must be two dimensions"),
    (_ops({"op": "chunk", "dim": 0, "parts": 3}, {"op": "transpose", "dims": [1, 1]}),
     "op 2 (transpose) swaps dim 1 with itself"),
    (_ops({"op": "chunk", "dim": 0, "parts": 3}, {"op": "transpose", "dims": [0, 1], "dim": 0}),
     "op 2 (transpose) does not take 'dim'"),
    (_ops({"op": "chunk", "dim": 0, "parts": 3}, {"op": "chunk", "dim": 0, "parts": 2}),
     "op 2 (chunk) splits one tensor, and it is given 3"),
    (_ops({"op": "concat", "dim": 0, "parts": 2}, targets=QKV[:1]),
     "op 1 (concat) joins runs of 2, which do not divide the 1 tensor(s)"),
    (_ops({"op": "permute"}), "unknown conversion op 'permute'"),
])
def test_an_invalid_op_is_one_line_naming_the_file_and_the_conversion(
        tmp_path: Path, document: dict[str, Any], says: str) -> None:
    line = _refused(tmp_path, _fused(), SQUARE, document)
    assert f"conversion making {QKV[0]!r}: {says}" in line


@pytest.mark.parametrize(("document", "says"), [
    ({"transform": {QKV[0]: [1, 0]}}, "unknown field 'transform'"),
    ({"conversions": [{**SPLIT, "sources": FUSED}]}, "sources must be a non-empty list of keys"),
    ({"conversions": [{**SPLIT, "op": "chunk"}]}, "unknown field 'op'"),
    ({"transforms": {QKV[0]: [1.0, 0]}}, "is not a permutation of the dimensions"),
    ({"rules": [{"pattern": "a"}]}, "a rule must be"),
    ({"conversions": {"sources": [FUSED]}}, "conversions must be a list"),
])
def test_an_entry_that_would_be_ignored_is_refused_at_load(
        tmp_path: Path, document: dict[str, Any], says: str) -> None:
    assert says in _refused(tmp_path, _fused(), SQUARE, document)


def test_a_written_rules_file_with_conversions_loads_back(tmp_path: Path) -> None:
    from ckptdiff.fix import rules_file

    path = tmp_path / "written.json"
    path.write_text(json.dumps({"schema": "ckptdiff.rules/1", "rules": [], "transforms": {},
                                "conversions": [{**SPLIT, "target": None, "confidence": 0.9,
                                                 "rule": "split"},
                                                {**STACK, "target": STACKED}]}))
    plan = rules_file.load(path)
    assert [c.targets[0] for c in plan.conversions] == [QKV[0], STACKED]
    again = tmp_path / "again.json"
    again.write_text(plan.to_json())
    assert rules_file.load(again) == plan


def test_a_written_file_holds_transforms_only_for_keys_its_rules_rename_to() -> None:
    from dataclasses import replace

    from tests.helpers import manifest, t

    from ckptdiff.diffing.match import diff_manifests
    from ckptdiff.fix.rules_file import from_report

    report = diff_manifests(manifest(t("dense/kernel", 3, 5), t("dense/bias", 5)),
                            manifest(t("dense.weight", 5, 3), t("dense.bias", 5)))
    assert [s.axes for s in report.suggestions] == [(1, 0), None] and report.rules
    assert from_report(report).transforms == {"dense.weight": (1, 0)}
    # A suggestion the rules cannot reach stays a suggestion; its transform would name a key
    # no tensor ends up under, which applying the file refuses.
    assert from_report(replace(report, rules=())).transforms == {}


@pytest.mark.parametrize(("op", "says"), [
    ({"op": "merge_lora"}, "needs 'scale'"),
    ({"op": "merge_lora", "scale": "2"}, "not a number"),
    ({"op": "merge_lora", "scale": 2.0, "fan_in_fan_out": 1}, "not true or false"),
    ({"op": "merge_lora", "scale": 2.0, "dim": 0}, "does not take 'dim'"),
])
def test_a_malformed_merge_is_one_line(tmp_path: Path, op: dict[str, Any], says: str) -> None:
    w, a, b = torch.zeros(4, 4), torch.zeros(2, 4), torch.zeros(4, 2)
    source = {"l.base_layer.weight": w, "l.lora_A.weight": a, "l.lora_B.weight": b}
    document = {"conversions": [{"sources": list(source), "targets": ["l.weight"], "ops": [op]}]}
    code, err, out = _remap(tmp_path, source, {"l.weight": w}, document)
    assert code == 2 and says in err and len(err.strip().splitlines()) == 1 and not out.exists()


def test_a_merge_of_two_sources_is_one_line(tmp_path: Path) -> None:
    w, a = torch.zeros(4, 4), torch.zeros(2, 4)
    source = {"l.base_layer.weight": w, "l.lora_A.weight": a}
    document = {"conversions": [{"sources": list(source), "targets": ["l.weight"],
                                 "ops": [{"op": "merge_lora", "scale": 1.0}]}]}
    code, err, out = _remap(tmp_path, source, {"l.weight": w}, document)
    assert code == 2 and "merge_lora" in err and "given 2" in err and not out.exists()


def test_min_confidence_with_an_applied_rules_file_is_one_line(tmp_path: Path) -> None:
    # Every entry of a file is applied: a threshold that filters nothing must not look obeyed.
    w = torch.zeros(2, 2)
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"schema": "ckptdiff.rules/1", "rules": [
        {"pattern": "^module\\.", "replacement": ""}]}))
    out = tmp_path / "out.safetensors"
    result = CliRunner().invoke(app, [
        "remap", str(_save(tmp_path / "src.safetensors", {"module.l.weight": w})),
        str(_save(tmp_path / "model.safetensors", {"l.weight": w})), "-o", str(out),
        "--rules", str(rules), "--min-confidence", "0.9"])
    assert result.exit_code == 2 and "--min-confidence" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not out.exists()
    applied = CliRunner().invoke(app, [
        "remap", str(tmp_path / "src.safetensors"), str(tmp_path / "model.safetensors"),
        "-o", str(out), "--rules", str(rules)])
    assert applied.exit_code == 0, applied.stderr
