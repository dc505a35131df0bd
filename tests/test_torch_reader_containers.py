"""Container selection: which part of a checkpoint is the model, explicit keys, optimizer slots.

The selection rules are framework-agnostic and tested on plain Python objects with a stand-in
tensor class; the end-to-end tests save real checkpoints with torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeGuard

import pytest

from ckptdiff.errors import CorruptFileError, UsageError
from ckptdiff.readers import read
from ckptdiff.readers.torch import container_walk
from ckptdiff.readers.torch.containers import Selection, select_tensors


class FakeTensor:
    """A stand-in for a tensor record."""

    def __init__(self, name: str = "t") -> None:
        self.name = name


def is_fake(value: object) -> TypeGuard[FakeTensor]:
    return isinstance(value, FakeTensor)


def select(root: object, key: str | None = None) -> Selection[FakeTensor]:
    return select_tensors(root, is_fake, key, "ckpt.pt")


def state(*names: str) -> dict[str, FakeTensor]:
    return {name: FakeTensor(name) for name in names}


def adam_state(params: int, names: list[str] | None = None) -> dict[str, Any]:
    group: dict[str, Any] = {"lr": 0.001, "params": list(range(params))}
    if names is not None:
        group["param_names"] = names
    return {"state": {i: {"step": FakeTensor(), "exp_avg": FakeTensor()} for i in range(params)},
            "param_groups": [group]}


def model_keys(selection: Selection[FakeTensor]) -> list[str]:
    return [f.key for f in selection.model]


def optimizer_keys(selection: Selection[FakeTensor]) -> list[str]:
    return [f.key for f in selection.optimizer]


def test_flat_state_dict_has_no_container() -> None:
    selection = select({"a.weight": FakeTensor(), "a.bias": FakeTensor(), "_version": 2})
    assert selection.container_key is None
    assert model_keys(selection) == ["a.weight", "a.bias"]
    assert selection.metadata["containers"] == []
    assert selection.metadata["container_values"] == {"_version": 2}


@pytest.mark.parametrize(("root", "chosen"), [
    ({"state_dict": state("w"), "epoch": 1}, "state_dict"),
    ({"model_state_dict": state("w"), "optimizer_state_dict": adam_state(1)}, "model_state_dict"),
    ({"ema": state("w"), "model": state("w")}, "model"),
    ({"model_ema": state("w"), "state_dict": state("w")}, "state_dict"),
    ({"ema": state("w"), "step": 10}, "ema"),
    ({"module": state("w"), "optimizer": None, "buffer_names": ["x"]}, "module"),
    ({"net": state("w"), "callbacks": {"cb": {"best": FakeTensor()}}}, "net"),
    ({"model": {"state_dict": state("w"), "meta": {}}}, "model.state_dict"),
    ({"weights_of_my_model": state("w"), "rng_state": {"cpu": FakeTensor()}},
     "weights_of_my_model"),
])
def test_well_known_and_single_containers_are_chosen(root: dict[str, Any], chosen: str) -> None:
    selection = select(root)
    assert selection.container_key == chosen
    assert model_keys(selection) == ["w"]


def test_several_unnamed_containers_are_read_whole() -> None:
    root = {"generator": state("a", "b"), "discriminator": state("c"), "epoch": 5}
    selection = select(root)
    assert selection.container_key is None
    assert model_keys(selection) == ["generator.a", "generator.b", "discriminator.c"]
    assert [c["role"] for c in selection.metadata["containers"]] == ["model", "model"]


def test_lightning_checkpoint_includes_optimizer_slots_with_summary() -> None:
    root = {"epoch": 3, "global_step": 90, "pytorch-lightning_version": "2.4.0",
            "state_dict": state("model.w", "model.b"), "loops": {},
            "optimizer_states": [adam_state(2)], "lr_schedulers": [{"last_epoch": 3}]}
    selection = select(root)
    assert selection.container_key == "state_dict"
    assert model_keys(selection) == ["model.w", "model.b"]
    assert optimizer_keys(selection) == [
        "optimizer_states.0.state.0.step", "optimizer_states.0.state.0.exp_avg",
        "optimizer_states.0.state.1.step", "optimizer_states.0.state.1.exp_avg"]
    assert selection.metadata["optimizer"] == [
        {"key": "optimizer_states.0", "param_groups": 1, "params_per_group": [2],
         "state_entries": 2, "slots": ["exp_avg", "step"], "lr": [0.001]}]
    assert selection.metadata["container_values"] == {
        "epoch": 3, "global_step": 90, "pytorch-lightning_version": "2.4.0"}
    assert selection.metadata["containers"] == [
        {"key": "state_dict", "tensors": 2, "role": "model"},
        {"key": "optimizer_states", "tensors": 4, "role": "optimizer"}]


def test_optimizer_param_names_become_slot_of() -> None:
    selection = select({"model": state("w", "b"),
                        "optim": adam_state(2, ["layer.w", "layer.b"])})
    slots = {f.key: f.slot_of for f in selection.optimizer}
    assert slots["optim.state.0.exp_avg"] == "layer.w"
    assert slots["optim.state.1.step"] == "layer.b"


def test_an_optimizer_state_dict_alone_is_all_slots() -> None:
    selection = select(adam_state(1))
    assert selection.container_key is None and selection.model == ()
    assert optimizer_keys(selection) == ["state.0.step", "state.0.exp_avg"]
    assert selection.metadata["optimizer"][0]["key"] is None
    several = select([adam_state(1), adam_state(1)])
    assert optimizer_keys(several) == ["0.state.0.step", "0.state.0.exp_avg",
                                       "1.state.0.step", "1.state.0.exp_avg"]
    assert [s["key"] for s in several.metadata["optimizer"]] == ["0", "1"]


@pytest.mark.parametrize(("key", "chosen", "keys"), [
    ("ema", "ema", ["w2"]),
    ("model", "model", ["w1"]),
    ("nested.inner", "nested.inner", ["w3"]),
    ("nested/inner", "nested.inner", ["w3"]),
    ("dotted.a.b", "dotted.a.b", ["w4"]),
    ("a.b", "a.b", ["w5"]),
])
def test_explicit_keys(key: str, chosen: str, keys: list[str]) -> None:
    root = {"model": state("w1"), "ema": state("w2"), "nested": {"inner": state("w3")},
            "dotted": {"a.b": state("w4")}, "a.b": state("w5"), "optimizer": adam_state(1)}
    selection = select(root, key)
    assert selection.container_key == chosen
    assert model_keys(selection) == keys
    assert optimizer_keys(selection) == ["optimizer.state.0.step", "optimizer.state.0.exp_avg"]


def test_explicit_key_naming_the_optimizer() -> None:
    selection = select({"model": state("w"), "optimizer": adam_state(1)}, "optimizer")
    assert selection.container_key == "optimizer"
    assert selection.model == ()
    assert optimizer_keys(selection) == ["state.0.step", "state.0.exp_avg"]


@pytest.mark.parametrize(("key", "message"), [
    ("nope", "no container 'nope' in the checkpoint; candidates: state_dict, optimizer_states"),
    ("state_dict.w", "'state_dict.w' is a single tensor, not a container"),
    ("epoch", "'epoch' holds no tensors"),
    (".", "no container '.'"),
])
def test_bad_keys_list_the_candidates(key: str, message: str) -> None:
    root = {"state_dict": state("w"), "optimizer_states": [adam_state(1)], "epoch": 1}
    with pytest.raises(UsageError) as caught:
        select(root, key)
    assert str(caught.value).startswith("ckpt.pt: ")
    assert message in str(caught.value)


def test_bad_key_in_a_flat_state_dict() -> None:
    with pytest.raises(UsageError, match="candidates: none"):
        select(state("w"), "model")


def test_nested_dicts_and_lists_flatten_with_dots() -> None:
    root = {"state_dict": {"enc": {"layers": [state("w"), state("w")]}, "head.b": FakeTensor()}}
    assert model_keys(select(root)) == ["enc.layers.0.w", "enc.layers.1.w", "head.b"]


def test_bare_tensor_and_list_roots() -> None:
    assert model_keys(select(FakeTensor())) == ["tensor"]
    assert model_keys(select([FakeTensor(), {"x": FakeTensor()}])) == ["0", "1.x"]


def test_keys_that_flatten_alike_are_refused() -> None:
    with pytest.raises(CorruptFileError, match="'a.b'"):
        select({"a.b": FakeTensor(), "a": {"b": FakeTensor()}})


def test_self_containing_and_exponentially_shared_containers_are_refused(
        monkeypatch: pytest.MonkeyPatch) -> None:
    cycle: dict[str, Any] = {"t": FakeTensor()}
    cycle["again"] = cycle
    with pytest.raises(CorruptFileError, match="nest more than"):
        select({"model": cycle})
    shared: dict[str, Any] = {"t": FakeTensor()}
    for _ in range(40):
        shared = {"a": shared, "b": shared}
    monkeypatch.setattr(container_walk, "MAX_VISITS", 10_000)
    with pytest.raises(CorruptFileError, match="more than 10,000 entries"):
        select({"model": shared})


def test_container_values_are_small_json_scalars() -> None:
    root: dict[str, Any] = {"state_dict": state("w"), "name": "x" * 500, "nan": float("nan"),
                            "obj": object(), "none": None, "flag": True}
    root.update({f"v{i}": i for i in range(40)})
    values = select(root).metadata["container_values"]
    assert values["name"] == "x" * 200 and values["nan"] == "nan"
    assert values["none"] is None and values["flag"] is True and "obj" not in values
    assert len(values) == 32


# --- end to end with torch ---------------------------------------------------------------------

def test_key_argument_end_to_end(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    np = pytest.importorskip("numpy")
    model = torch.nn.Linear(2, 2)
    path = tmp_path / "ckpt.pth"
    torch.save({"model": model.state_dict(), "ema": {"model": model.state_dict()},
                "best_score": np.float64(0.25), "step": np.int64(12)}, path)
    default = read(path)
    assert default.container_key == "model"
    assert default.metadata["container_values"] == {"best_score": 0.25, "step": 12}
    assert "numpy.dtype" in default.metadata["weights_only_refuses"]
    nested = read(path, "ema/model")
    assert nested.container_key == "ema.model" and nested.keys() == ["weight", "bias"]
    with pytest.raises(UsageError, match="candidates: model, ema, ema.model"):
        read(path, "missing")


def test_optimizer_built_from_named_parameters_names_its_slots(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Linear(3, 1))
    optimizer = torch.optim.AdamW(model.named_parameters())
    model(torch.randn(4, 2)).sum().backward()
    optimizer.step()
    if "param_names" not in optimizer.state_dict()["param_groups"][0]:
        pytest.skip("this torch does not save param_names")
    path = tmp_path / "ckpt.pt"
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, path)
    manifest = read(path)
    assert manifest["optimizer.state.0.exp_avg"].slot_of == "0.weight"
    assert manifest["optimizer.state.3.exp_avg_sq"].slot_of == "1.bias"
    assert manifest["optimizer.state.3.exp_avg_sq"].kind == "optimizer_slot"
    assert manifest["0.weight"].slot_of is None
