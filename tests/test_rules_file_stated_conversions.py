"""A conversion a user states in a rules file that cannot be performed is one clear error, before
anything is written: a target stated twice, a dim the tensors do not have, a chunk of several."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ckptdiff.errors import UsageError
from ckptdiff.fix.convert import result_shapes
from ckptdiff.rename.results import ConversionOp

HIDDEN = 8
SPLIT = {"sources": ["enc.0.attn.Wqkv.weight"],
         "targets": [f"enc.0.attn.{w}.weight" for w in "qkv"],
         "ops": [{"op": "chunk", "dim": 0, "parts": 3, "sizes": [HIDDEN] * 3}]}


def _remap_by(tmp_path: Path, conversions: list[dict[str, Any]]) -> Any:
    torch = pytest.importorskip("torch")
    safetensors_torch = pytest.importorskip("safetensors.torch")
    from ckptdiff import remap

    source = tmp_path / "hub.safetensors"
    safetensors_torch.save_file({"enc.0.attn.Wqkv.weight": torch.randn(3 * HIDDEN, HIDDEN)},
                                str(source))
    target = tmp_path / "model.safetensors"
    safetensors_torch.save_file({f"enc.0.attn.{w}.weight": torch.zeros(HIDDEN, HIDDEN)
                                 for w in "qkv"}, str(target))
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"schema": "ckptdiff.rules/1", "rules": [],
                                 "conversions": conversions}))
    return remap(source, target, tmp_path / "out.safetensors", rules=rules)


def test_one_stated_split_loads(tmp_path: Path) -> None:
    assert _remap_by(tmp_path, [SPLIT]).report.compatible


def test_a_conversion_stated_twice_is_refused_before_writing(tmp_path: Path) -> None:
    # Written twice, the file held two tensors under one name and failed to read back.
    with pytest.raises(UsageError, match="enc.0.attn.q.weight: made by more than one"):
        _remap_by(tmp_path, [SPLIT, SPLIT])
    assert not (tmp_path / "out.safetensors").exists()


def test_two_conversions_making_one_key_are_refused(tmp_path: Path) -> None:
    other = {**SPLIT, "targets": ["enc.0.attn.q.weight", "enc.0.attn.x.weight",
                                  "enc.0.attn.y.weight"]}
    with pytest.raises(UsageError, match="made by more than one"):
        _remap_by(tmp_path, [SPLIT, other])


def test_distinct_conversions_of_distinct_keys_are_not_refused(tmp_path: Path) -> None:
    halves = {"sources": ["enc.0.attn.Wqkv.weight"],
              "targets": ["enc.0.attn.q.weight", "enc.0.attn.kv.weight"],
              "ops": [{"op": "chunk", "dim": 0, "parts": 2, "sizes": [HIDDEN, 2 * HIDDEN]}]}
    result = _remap_by(tmp_path, [halves])  # loads nothing whole, but is performed
    assert result.converted == 2


def test_a_stated_dim_the_tensor_lacks_is_a_usage_error(tmp_path: Path) -> None:
    beyond = {**SPLIT, "ops": [{"op": "chunk", "dim": 5, "parts": 3, "sizes": [HIDDEN] * 3}]}
    with pytest.raises(UsageError, match="chunk along dim 5: the tensors have 2 dimensions"):
        _remap_by(tmp_path, [beyond])


@pytest.mark.parametrize("op", [
    ConversionOp("concat", 2), ConversionOp("stack", 3), ConversionOp("chunk", -1, 2, (2, 2)),
    ConversionOp("transpose", dims=(0, 2))])
def test_result_shapes_refuse_a_dim_out_of_range(op: ConversionOp) -> None:
    with pytest.raises(UsageError, match="along dim|dimensions"):
        result_shapes([(4, 4), (4, 4)] if op.op != "chunk" else [(4, 4)], [op])


def test_result_shapes_keep_the_dims_in_range() -> None:
    assert result_shapes([(4, 3), (4, 3)], [ConversionOp("stack", 2)]) == [(4, 3, 2)]
    assert result_shapes([(4, 3), (4, 3)], [ConversionOp("concat", 1)]) == [(4, 6)]
    assert result_shapes([(4, 3)], [ConversionOp("transpose", dims=(1, 0))]) == [(3, 4)]


def test_a_chunk_of_several_tensors_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="chunk splits one tensor, not 2"):
        result_shapes([(4, 4), (4, 4)], [ConversionOp("chunk", 0, 2, (2, 2))])
