"""Lightning checkpoints: hyper-parameters pickled as Namespace, AttributeDict, paths and omegaconf
configs read as plain data (never resolved), and named as what weights_only=True refuses."""

from __future__ import annotations

import argparse
import pathlib
import pickle
import pickletools
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from tests.hostile.lightning import OMEGA_GLOBALS, AttributeDict, DictConfig, fake_modules

from ckptdiff.errors import CorruptFileError, UnsafeContentError
from ckptdiff.readers import read
from ckptdiff.readers.pickle.hparams import AttributesRecord, NamespaceRecord
from ckptdiff.readers.pickle.unpickler import LoadSession, load_pickle
from ckptdiff.readers.torch.manifest import WEIGHTS_ONLY_NOTE

torch = pytest.importorskip("torch")

HPARAMS = {"lr": 0.01, "layers": [64, 32], "name": "tiny"}
EXPECTED_REFUSED = {"argparse.Namespace", "lightning.fabric.utilities.data.AttributeDict",
                    "pathlib.PosixPath", "pathlib.PureWindowsPath"} | OMEGA_GLOBALS


def lightning_checkpoint(hyper_parameters: object) -> dict[str, Any]:
    """What Trainer.save_checkpoint writes for a one-layer model after one Adam step."""
    torch.manual_seed(0)
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    model(torch.randn(3, 2)).sum().backward()
    optimizer.step()
    return {"epoch": 2, "global_step": 10, "pytorch-lightning_version": "2.4.0",
            "state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
            "loops": {}, "callbacks": {}, "optimizer_states": [optimizer.state_dict()],
            "lr_schedulers": [], "hparams_name": "kwargs",
            "hyper_parameters": hyper_parameters}


def rich_hparams() -> AttributeDict:
    return AttributeDict(
        lr=0.01, args=argparse.Namespace(batch=8, data=pathlib.PosixPath("/data/train")),
        config=DictConfig({"model": {"layers": [64, 32], "act": "relu"}, "seed": None}),
        export=pathlib.PureWindowsPath("C:/out/model"))


def save(tmp_path: Path, hyper_parameters: object, module: str = "lightning.fabric.utilities.data",
         name: str = "epoch=2-step=10.ckpt") -> Path:
    path = tmp_path / name
    with fake_modules(module):
        torch.save(lightning_checkpoint(hyper_parameters), path)
    return path


def data_pkl(path: Path) -> bytes:
    with zipfile.ZipFile(path) as archive:
        return archive.read(next(n for n in archive.namelist() if n.endswith("/data.pkl")))


def test_hyper_parameters_read_as_plain_data(tmp_path: Path) -> None:
    path = save(tmp_path, rich_hparams())
    manifest = read(path)
    assert manifest.container_key == "state_dict"
    assert manifest.keys()[:2] == ["model.weight", "model.bias"]
    assert sum(t.kind == "optimizer_slot" for t in manifest.tensors) == 6
    assert set(manifest.metadata["weights_only_refuses"]) == EXPECTED_REFUSED
    assert WEIGHTS_ONLY_NOTE in manifest.metadata["warnings"]
    assert manifest.metadata["container_values"]["hparams_name"] == "kwargs"
    hparams = load_pickle(data_pkl(path), LoadSession(legacy=False), "x", "data.pkl")
    assert isinstance(hparams, dict)
    assert hparams["hyper_parameters"] == {
        "lr": 0.01, "args": {"batch": 8, "data": "/data/train"},
        "config": {"model": {"layers": [64, 32], "act": "relu"}, "seed": None},
        "export": "C:\\out\\model"}


def test_torch_weights_only_refuses_what_the_note_says(tmp_path: Path) -> None:
    path = save(tmp_path, rich_hparams())
    with pytest.raises(pickle.UnpicklingError, match="weights_only"):
        torch.load(path, weights_only=True)


@pytest.mark.parametrize("module", ["lightning.fabric.utilities.data",
                                    "lightning_fabric.utilities.data",
                                    "pytorch_lightning.utilities.parsing"])
def test_every_home_of_attribute_dict(tmp_path: Path, module: str) -> None:
    path = save(tmp_path, AttributeDict(HPARAMS), module)
    manifest = read(path)
    assert f"{module}.AttributeDict" in manifest.metadata["weights_only_refuses"]
    assert len(manifest) == 8


def test_namespace_hparams_of_older_lightning(tmp_path: Path) -> None:
    path = save(tmp_path, argparse.Namespace(**HPARAMS))
    assert read(path).metadata["weights_only_refuses"] == ["argparse.Namespace"]


def test_the_omegaconf_stand_in_pickles_like_omegaconf() -> None:
    with fake_modules():
        data = pickle.dumps(DictConfig({"a": {"b": [1, 2]}, "c": 0.5}), protocol=2)
    names = {arg.replace(" ", ".").replace("__builtin__.long", "builtins.int")
             .replace("__builtin__", "builtins")
             for op, arg, _ in pickletools.genops(data) if op.name == "GLOBAL"}
    assert names == OMEGA_GLOBALS


def test_real_omegaconf_configs(tmp_path: Path) -> None:
    omegaconf = pytest.importorskip("omegaconf")
    config = omegaconf.OmegaConf.create({"model": {"layers": [1, 2]}, "lr": 0.1, "opt": None})
    path = tmp_path / "omega.ckpt"
    torch.save(lightning_checkpoint(config), path)
    loaded = load_pickle(data_pkl(path), LoadSession(legacy=False), "x", "data.pkl")
    assert isinstance(loaded, dict)
    assert loaded["hyper_parameters"] == {"model": {"layers": [1, 2]}, "lr": 0.1, "opt": None}


def test_hparams_holding_code_are_still_unsafe(tmp_path: Path) -> None:
    class Callback:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (eval, ("1",))

    path = save(tmp_path, AttributeDict(lr=0.1, hook=Callback()))
    with pytest.raises(UnsafeContentError) as caught:
        read(path)
    assert caught.value.globals == ("builtins.eval",)


def pickled(*parts: bytes) -> bytes:
    return b"\x80\x02" + b"".join(parts) + b"."


NAMESPACE = b"cargparse\nNamespace\n"
EMPTY_DICT, EMPTY_TUPLE, NEWOBJ, BUILD = b"}", b")", b"\x81", b"b"


def test_records_cannot_be_changed_by_a_pickle() -> None:
    session = LoadSession(legacy=False)
    attacks = [
        # BUILD on the class itself, with slot state that would set class attributes.
        pickled(NAMESPACE, b"N", EMPTY_DICT, b"X\x08\x00\x00\x00__init__", b"K\x01s", b"\x86",
                BUILD),
        # BUILD with state that is not a dict of attribute names.
        pickled(NAMESPACE, EMPTY_TUPLE, NEWOBJ, b"K\x01", BUILD),
        # A path with state, and a path part that is not text.
        pickled(b"cpathlib\nPosixPath\n", b"X\x01\x00\x00\x00a\x85R", EMPTY_DICT, BUILD),
        pickled(b"cpathlib\nPosixPath\n", b"K\x01\x85R"),
    ]
    for data in attacks:
        with pytest.raises(CorruptFileError):
            load_pickle(data, session, "f.ckpt", "data.pkl")
    assert "__init__" not in vars(NamespaceRecord) and "__init__" in vars(AttributesRecord)
    namespace = load_pickle(pickled(NAMESPACE, EMPTY_TUPLE, NEWOBJ, EMPTY_DICT,
                                    b"X\x01\x00\x00\x00aK\x01s", BUILD), session, "f", "d")
    assert namespace == {"a": 1} and type(namespace) is NamespaceRecord


def test_nothing_is_imported_for_them(tmp_path: Path) -> None:
    path = save(tmp_path, rich_hparams())
    before = set(sys.modules)
    read(path)
    assert not {m for m in set(sys.modules) - before if m.split(".")[0] in
                ("argparse", "omegaconf", "lightning", "lightning_fabric", "pytorch_lightning")}
