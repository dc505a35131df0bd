"""``diff --explain`` for torch, checked against what ``load_state_dict`` really does."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import ckptdiff
from ckptdiff.diffing.report import LoadStatement
from ckptdiff.loaders.explain import explain_load

torch = pytest.importorskip("torch", reason="torch is not installed")
nn = torch.nn


def net(head: int = 2, extra: bool = False) -> Any:
    layers = [nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, head)]
    if extra:
        layers.append(nn.Linear(head, head))
    return nn.Sequential(*layers)


class Tied(nn.Module):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(5, 4)
        self.head = nn.Linear(4, 5, bias=False)
        self.head.weight = self.embed.weight
        self.register_buffer("pos", torch.arange(3), persistent=False)


def save_torch(state: dict[str, Any], path: Path) -> Path:
    torch.save({"model": state}, path)
    return path


def save_safetensors(state: dict[str, Any], path: Path) -> Path:
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    return path


def without(key: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda state: {k: v for k, v in state.items() if k != key}


# (name, model that wrote the checkpoint, edit of its state dict, file writer, target model)
CASES: list[tuple[str, Callable[[], Any], Callable[[dict[str, Any]], dict[str, Any]],
                  Callable[[dict[str, Any], Path], Path], Callable[[], Any]]] = [
    ("same", net, dict, save_torch, net),
    ("missing", net, dict, save_torch, lambda: net(extra=True)),
    ("unexpected", lambda: net(extra=True), dict, save_torch, net),
    ("size", net, dict, save_torch, lambda: net(head=3)),
    ("bf16", net, lambda s: {k: v.to(torch.bfloat16) if v.is_floating_point() else v
                            for k, v in s.items()}, save_torch, net),
    ("tied", Tied, without("head.weight"), save_torch, Tied),
    ("non_persistent", Tied, lambda s: {**s, "pos": torch.arange(3)}, save_torch, Tied),
    ("batches_tracked", net, without("1.num_batches_tracked"), save_safetensors, net),
]


def prepare(case: tuple[Any, ...], tmp_path: Path) -> tuple[Path, Any, list[LoadStatement]]:
    name, writer, edit, save, target = case
    suffix = ".safetensors" if save is save_safetensors else ".pt"
    path = save(edit(writer().state_dict()), tmp_path / f"{name}{suffix}")
    statements = list(explain_load(ckptdiff.resolve(path), ckptdiff.resolve(target)))
    return path, target, statements


def load_real(path: Path) -> dict[str, Any]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return dict(load_file(str(path)))
    loaded: dict[str, Any] = torch.load(path)["model"]
    return loaded


def named_keys(message: str) -> set[str]:
    """The keys a torch load_state_dict error names."""
    names: set[str] = set()
    for part in re.findall(r"(?:Missing|Unexpected) key\(s\) in state_dict: ([^\n]*?)\. ",
                           message + " "):
        names.update(re.findall(r'"([^"]+)"', part))
    names.update(re.findall(r"size mismatch for ([^:]+):", message))
    return names


def by_call(statements: list[LoadStatement], strict: bool) -> LoadStatement:
    return next(s for s in statements if s.call.startswith("model.load_state_dict")
                and ("strict=False" in s.call) != strict and s.outcome != "casts")


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_strict_statement_matches_torch(case: tuple[Any, ...], tmp_path: Path) -> None:
    path, target, statements = prepare(case, tmp_path)
    statement = by_call(statements, strict=True)
    model = target()
    try:
        model.load_state_dict(load_real(path))
    except RuntimeError as error:
        assert statement.outcome == "raises", statement
        assert set(statement.keys) == named_keys(str(error))
    else:
        assert statement.outcome == "loads", statement


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_non_strict_statement_matches_torch(case: tuple[Any, ...], tmp_path: Path) -> None:
    path, target, statements = prepare(case, tmp_path)
    statement = by_call(statements, strict=False)
    model = target()
    try:
        result = model.load_state_dict(load_real(path), strict=False)
    except RuntimeError as error:
        assert statement.outcome == "raises", statement
        assert set(statement.keys) == named_keys(str(error))
        assert "size mismatch" in str(error)
        return
    named = {*result.missing_keys, *result.unexpected_keys}
    assert statement.outcome == ("partial" if named else "loads"), statement
    assert set(statement.keys) == named


def test_dtype_cast_statement_matches_torch(tmp_path: Path) -> None:
    path, target, statements = prepare(CASES[4], tmp_path)
    (cast,) = [s for s in statements if s.outcome == "casts"]
    assert "bfloat16 → float32" in cast.message
    model = target()
    model.load_state_dict(load_real(path))  # no error: torch casts silently
    assert {k for k, v in model.state_dict().items()
            if v.dtype == torch.float32 and load_real(path)[k].dtype == torch.bfloat16} == set(
        cast.keys)


def test_optimizer_statements_match_torch(tmp_path: Path) -> None:
    model = net()
    optimizer = torch.optim.Adam(model.parameters())
    model.train()
    model(torch.randn(3, 4)).sum().backward()
    optimizer.step()
    path = tmp_path / "train.pt"
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, path)
    target = net()
    target[0].requires_grad_(False)
    statements = [s for s in explain_load(ckptdiff.resolve(path), ckptdiff.resolve(target))
                  if s.call.startswith("torch.optim")]
    assert len(statements) == 2
    saved = torch.load(path)["optimizer"]
    real = {"model.parameters()": list(target.parameters()),
            "[p for p in model.parameters() if p.requires_grad]":
                [p for p in target.parameters() if p.requires_grad]}
    for statement in statements:
        over = next(text for text in real if f"({text})" in statement.call)
        try:
            torch.optim.Adam(real[over]).load_state_dict(saved)
        except ValueError:
            assert statement.outcome == "raises", statement
        else:
            assert statement.outcome == "loads", statement


def test_misplaced_optimizer_state_fails_at_step(tmp_path: Path) -> None:
    model = net()
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.randn(3, 4)).sum().backward()
    optimizer.step()
    path = tmp_path / "train.pt"
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, path)
    target = net(head=3)
    (statement,) = [s for s in explain_load(ckptdiff.resolve(path), ckptdiff.resolve(target))
                    if s.call.startswith("torch.optim")]
    assert statement.outcome == "loads" and "optimizer.step() then fails" in statement.message
    resumed = torch.optim.Adam(target.parameters())
    resumed.load_state_dict(torch.load(path)["optimizer"])
    target(torch.randn(3, 4)).sum().backward()
    with pytest.raises(RuntimeError):
        resumed.step()
