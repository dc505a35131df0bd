"""ckptdiff's verdict against the real loaders, case by case (issue 15).

Each case saves a (mutated) state dict, runs the loader the user would call — strict
``load_state_dict(torch.load(path, weights_only=True)[container])`` for pickles,
``safetensors.torch.load_model`` for ``.safetensors``, or the ``--loader`` named — into a target
whose tensors hold sentinels, and checks by value that every target tensor was filled. ckptdiff's
default verdict must agree, and its error findings must name exactly the keys the loader names.
The agreement table is printed (``pytest -s`` shows it).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch", reason="the differential suite runs the real torch loaders")
pytest.importorskip("transformers", reason="tiny BERT and GPT-2 targets need transformers")
pytest.importorskip("safetensors", reason="safetensors files need the safetensors package")

import ckptdiff  # noqa: E402
from loader_cases import MODELS, Case, cases, mutate, save  # noqa: E402

RESULTS: list[tuple[Case, bool, bool]] = []
_SENTINEL_INT = -7


def _fill_sentinels(model: Any) -> None:
    with torch.no_grad():
        for value in model.state_dict(keep_vars=True).values():
            value.fill_(math.nan if value.is_floating_point() else _SENTINEL_INT)


def _unfilled(model: Any, stored: dict[str, Any]) -> list[str]:
    """Target keys still holding a sentinel; ``num_batches_tracked`` torch fills from the
    module's own value when the state dict lacks it, so it counts as filled there."""
    left = []
    for key, value in model.state_dict().items():
        sentinel = (torch.isnan(value).all() if value.is_floating_point()
                    else (value == _SENTINEL_INT).all())
        if bool(sentinel) and value.numel() and not (
                key.endswith("num_batches_tracked") and key not in stored):
            left.append(key)
    return left


def _run_loader(case: Case, path: Path, model: Any) -> tuple[bool, set[str]]:
    """(loaded and filled every tensor, keys the loader named)."""
    try:
        if case.loader == "load_state_dict-nonstrict":
            state = _torch_state(case, path)
            result = model.load_state_dict(state, strict=False)
            named = set(result.missing_keys)
        elif case.file == "safetensors":
            from safetensors.torch import load_model

            load_model(model, str(path), strict=True)
            state, named = None, set()
        else:
            state = _torch_state(case, path)
            model.load_state_dict(state, strict=True)
            named = set()
    except RuntimeError as exc:
        message = str(exc)
        keys = set(re.findall(r'"([^"]+)"', message))
        keys |= set(re.findall(r"size mismatch for ([^:]+):", message))
        return False, keys
    if state is None:
        from safetensors.torch import load_file

        state = load_file(str(path))
    unfilled = _unfilled(model, state)
    return not unfilled and not named - set(_tied_filled(model, named)), set(unfilled) | named


def _tied_filled(model: Any, missing: set[str]) -> list[str]:
    """Missing keys strict=False still fills, through the tensor they share."""
    values = model.state_dict()
    return [k for k in missing if not (torch.isnan(values[k]).all()
                                        if values[k].is_floating_point() else False)]


def _torch_state(case: Case, path: Path) -> Any:
    if case.file == "safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    loaded = torch.load(path, weights_only=True)
    return loaded["state_dict"] if case.file == "zip_container" else loaded


def _error_keys(report: ckptdiff.Report) -> set[str]:
    return {f.key for f in report.findings
            if f.severity == "error" and f.kind in ("missing", "unexpected", "shape")}


ALL_CASES = cases()


@pytest.mark.parametrize("case", ALL_CASES, ids=[c.name for c in ALL_CASES])
def test_default_verdict_agrees_with_the_loader(case: Case, tmp_path: Path) -> None:
    torch.manual_seed(0)
    saved = MODELS[case.model]()
    state = mutate(case.mutation, saved.state_dict(), case.model)
    path = save(case, state, tmp_path)
    target = MODELS[case.model]()
    report = ckptdiff.diff(path, target, loader=case.loader)
    _fill_sentinels(target)
    loads, named = _run_loader(case, path, target)
    RESULTS.append((case, loads, report.compatible))
    judged = report.verdicts[0]
    assert judged.default and judged.loads == report.compatible
    assert report.compatible == loads, f"{case.name}: {judged.reason}"
    if not loads and case.loader is None:
        assert _error_keys(report) == named, f"{case.name}: {judged.reason}"
    if loads:
        assert not _error_keys(report), report.to_text()


def test_agreement_table(capsys: pytest.CaptureFixture[str]) -> None:
    """Printed after the matrix: how many cases ran per model, and how many agreed."""
    if not RESULTS:
        pytest.skip("the matrix did not run in this session (select it too)")
    per_model: Counter[tuple[str, bool]] = Counter()
    for case, loads, compatible in RESULTS:
        per_model[(case.model, loads == compatible)] += 1
    lines = ["", "loader differential: model  cases  agree"]
    for model in MODELS:
        total = per_model[(model, True)] + per_model[(model, False)]
        lines.append(f"  {model:<12} {total:>5}  {per_model[(model, True)]:>5}")
    agreed = sum(loads == compatible for _, loads, compatible in RESULTS)
    lines.append(f"  {'all':<12} {len(RESULTS):>5}  {agreed:>5}")
    with capsys.disabled():
        print("\n".join(lines))
    assert len(RESULTS) >= 90 and agreed == len(RESULTS)


@pytest.mark.parametrize(("name", "loads"), [
    ("cnn_bn-no_counter-zip", False), ("cnn_bn-no_counter_plain-zip", True),
    ("cnn_bn-no_counter-safetensors", True), ("tied-tied_once-zip", False),
    ("tied-identity-safetensors", False), ("tied-tied_once-safetensors", True),
    ("buffer-stored_buffer-legacy", False), ("buffer-stored_buffer-zip-load_state_dict-nonstrict",
                                             True),
    ("weight_norm-old_weight_norm-zip", True), ("gpt2-tied_once-zip", False),
])
def test_matrix_covers_what_torch_decides(name: str, loads: bool) -> None:
    """The loader's own outcome for the cases the contract names (the matrix checks ckptdiff
    against it): a guard that the matrix still exercises each rule."""
    if not RESULTS:
        pytest.skip("the matrix did not run in this session (select it too)")
    case = next(c for c in ALL_CASES if c.name == name)
    assert [outcome for c, outcome, _ in RESULTS if c is case] == [loads]


def _with_weight_dtype(path: Path, code: str, bits: int) -> None:
    """A Linear(4, 4) checkpoint whose weight is stored as safetensors dtype ``code``."""
    import json
    import struct

    weight = 16 * bits // 8
    header = json.dumps({"weight": {"dtype": code, "shape": [4, 4], "data_offsets": [0, weight]},
                         "bias": {"dtype": "F32", "shape": [4],
                                  "data_offsets": [weight, weight + 16]}}).encode()
    header += b" " * (-len(header) % 8)
    path.write_bytes(struct.pack("<Q", len(header)) + header + bytes(weight + 16))


# F6_*: in the format (safe_open reads their headers) but torch has no such dtype; the F8 codes
# torch does have load, converted into the float32 weight.
@pytest.mark.parametrize(("code", "bits", "loads"), [
    ("F6_E2M3", 6, False), ("F6_E3M2", 6, False), ("F8_E8M0", 8, True),
    ("F8_E4M3FNUZ", 8, True), ("F8_E5M2", 8, True)])
def test_load_model_verdict_on_dtypes_torch_lacks(code: str, bits: int, loads: bool,
                                                   tmp_path: Path) -> None:
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_model

    path = tmp_path / "linear.safetensors"
    _with_weight_dtype(path, code, bits)
    with safe_open(str(path), "np") as handle:  # the file itself is well formed
        assert handle.get_slice("weight").get_dtype() == code
    model = torch.nn.Linear(4, 4)
    try:
        load_model(model, str(path), strict=True)
        loaded = True
    except SafetensorError as exc:
        assert "Dtype not understood" in str(exc)
        loaded = False
    assert loaded == loads
    judged = ckptdiff.diff(path, torch.nn.Linear(4, 4)).verdicts[0]
    assert judged.name == "safetensors.load_model" and judged.loads == loads, judged.reason
    if not loads:
        assert f"torch has no dtype for {code} (weight)" in judged.reason
