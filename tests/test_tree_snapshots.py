"""Snapshots of the rich trees at a fixed width (Console(width=100, force_terminal=False)).

Regenerate after an intended change with ``CKPTDIFF_UPDATE_GOLDEN=1 pytest tests/test_tree_*``
and read the diff of tests/golden_tree/ before committing it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import manifest, t

from ckptdiff.api import diff, read, resolve
from ckptdiff.graph.diff import diff_tree
from ckptdiff.manifest import Manifest
from ckptdiff.render.tree import render_manifest_tree
from ckptdiff.render.tree_diff import render_diff_tree

GOLDEN = Path(__file__).resolve().parent / "golden_tree"
TESTDATA = Path(__file__).resolve().parent.parent / "testdata" / "readers"
WIDTH = 100


def check(name: str, text: str) -> None:
    """Compare ``text`` with tests/golden_tree/<name> (or write it when updating)."""
    path = GOLDEN / name
    if os.environ.get("CKPTDIFF_UPDATE_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"no snapshot {path}: run with CKPTDIFF_UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def llama() -> Manifest:
    transformers = pytest.importorskip("transformers")
    config = transformers.LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=4,
                                      num_attention_heads=4, num_key_value_heads=2,
                                      vocab_size=100)
    built = resolve(transformers.LlamaForCausalLM, model_kwargs={"config": config})
    return replace(built, path="LlamaForCausalLM")


def relative(read_manifest: Manifest) -> Manifest:
    """The manifest labelled by its path inside the repository (snapshots are machine-free)."""
    return replace(read_manifest, path=Path(read_manifest.path).relative_to(TESTDATA).as_posix())


def broken_copy(target: Manifest, edit: Callable[[Any], Any]) -> Manifest:
    """A "checkpoint" of ``target`` with ``edit`` applied to each tensor (None drops it)."""
    kept = tuple(x for x in (edit(info) for info in target.tensors) if x is not None)
    return replace(target, path="ckpt.safetensors", format="safetensors", tensors=kept,
                   metadata={})


@pytest.mark.parametrize(("name", "options"), [
    ("llama_inspect.txt", {}),
    ("llama_inspect_depth2.txt", {"depth": 2}),
    ("llama_inspect_filter_attn.txt", {"key_glob": "*.self_attn.[qk]_proj.*"}),
])
def test_llama_inspect(llama: Manifest, name: str, options: dict[str, Any]) -> None:
    check(name, render_manifest_tree(llama, width=WIDTH, **options))


def test_llama_diff_with_one_broken_layer(llama: Manifest) -> None:
    def edit(info: Any) -> Any:
        if info.key == "model.layers.2.mlp.up_proj.weight":
            return replace(info, shape=(65, 32))
        if info.key == "model.layers.3.self_attn.o_proj.weight":
            return None
        if info.key == "model.norm.weight":
            return replace(info, dtype="bfloat16")
        return info

    source = broken_copy(llama, edit)
    check("llama_diff_broken.txt",
          render_diff_tree(diff_tree(diff(source, llama), source, llama), width=WIDTH))


def test_llama_diff_with_a_module_prefix(llama: Manifest) -> None:
    source = broken_copy(llama, lambda info: replace(info, key="module." + info.key))
    check("llama_diff_module_prefix.txt",
          render_diff_tree(diff_tree(diff(source, llama), source, llama), width=WIDTH))


def test_llama_diff_all_matching_is_one_line(llama: Manifest) -> None:
    text = render_diff_tree(diff_tree(diff(llama, llama), llama, llama), width=WIDTH)
    assert text.splitlines()[-1] == "union of both key sets  ✓ 39 matched"


def test_bert_inspect_shows_ties() -> None:
    transformers = pytest.importorskip("transformers")
    config = transformers.BertConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                     num_attention_heads=4, vocab_size=100,
                                     max_position_embeddings=64)
    built = resolve(transformers.BertForMaskedLM, model_kwargs={"config": config})
    check("bert_inspect.txt", render_manifest_tree(replace(built, path="BertForMaskedLM"),
                                                   width=WIDTH))


def test_sharded_safetensors_inspect() -> None:
    check("sharded_inspect.txt",
          render_manifest_tree(relative(read(TESTDATA / "safetensors" / "sharded")), width=WIDTH))


def test_tf2_checkpoint_with_optimizer_slots() -> None:
    check("tf2_keras_inspect.txt",
          render_manifest_tree(relative(read(TESTDATA / "tf" / "tf2_keras")), width=WIDTH))


def test_report_only_diff_tree() -> None:
    source = manifest(*(t(f"enc.{i}.w", 9 if i == 4 else 4, 4) for i in range(6)),
                      t("head.w", 2, 4))
    target = manifest(*(t(f"enc.{i}.w", 4, 4) for i in range(6)), t("cls.w", 2, 4))
    check("report_only_diff.txt", render_diff_tree(diff_tree(diff(source, target)),
                                                   width=WIDTH))
