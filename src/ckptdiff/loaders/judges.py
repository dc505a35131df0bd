"""Which loaders apply to a (source format, target kind) pair, which one judges by default, and
each one's judgement: the part of the design that makes ``compatible`` the loader's verdict.

Defaults follow the contract: a live torch model loads a pickle checkpoint by strict
``load_state_dict``, a ``.safetensors`` file by ``safetensors.torch.load_model``, a Hugging Face
model directory or sharded index by ``from_pretrained`` when it is a ``PreTrainedModel`` (else by
strict ``load_state_dict`` over all shards). A checkpoint target has no loader: key parity.
``diff --loader NAME`` picks another applicable one (``key-parity`` included).

A live Keras model against a TF2 checkpoint or SavedModel, keyed by the object paths restore
pairs it by (``targets.keras.objectgraph``), is judged by ``tf.train.Checkpoint(...).restore``:
it loads when every model variable gets a value, whatever unused checkpoint values remain.
A GGUF against a live ``PreTrainedModel`` (in GGUF names) is judged by
``from_pretrained(..., gguf_file=...)`` where transformers' tables decide it
(``loaders.gguf_pretrained``), else by key parity.
A Keras file against a live Keras model, both keyed as ``load_weights`` pairs them
(``targets.keras.keyspace``), is judged by ``model.load_weights`` (``loaders.keras_weights``
for ``.weights.h5``/``.keras``, ``loaders.keras_legacy_weights`` for legacy ``.h5``, by order
and ``by_name=True``), with ``skip_mismatch=True`` beside each. Pairs that could not be keyed
so (a target without Keras' saving facts) keep key parity, their dry-run verdicts
(``loaders.explain_verdicts``) listed beside it. The torch, transformers and Keras judges
decide, key by key, what the loader accepts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from ckptdiff.errors import UsageError
from ckptdiff.loaders.explain_verdicts import keras_judgements, tf_judgements
from ckptdiff.loaders.frameworks import KERAS_FORMATS, TF_FORMATS, framework_of
from ckptdiff.loaders.gguf_pretrained import NAME as GGUF_PRETRAINED
from ckptdiff.loaders.gguf_pretrained import gguf_pretrained_judge
from ckptdiff.loaders.keras_legacy_weights import applies_legacy, judge_legacy
from ckptdiff.loaders.keras_weights import applies_load_weights, judge_load_weights
from ckptdiff.loaders.torch_loaders import (
    applies_to_torch,
    judge_load_model,
    judge_load_state_dict,
)
from ckptdiff.loaders.transformers import applies_from_pretrained, judge_from_pretrained
from ckptdiff.loaders.verdict import Judgement, KeyCall
from ckptdiff.manifest import Manifest

KEY_PARITY = "key-parity"
HF_LAYOUT_FORMATS = frozenset({"safetensors-sharded", "torch-sharded"})


@dataclass(frozen=True)
class LoaderChoice:
    """One loader that applies to the pair: its ``--loader`` name and how it judges."""

    name: str
    judge: Callable[[], Judgement]


def _torch_choices(source: Manifest, target: Manifest) -> list[LoaderChoice]:
    strict = LoaderChoice("load_state_dict",
                          lambda: judge_load_state_dict(source, target, strict=True))
    loose = LoaderChoice("load_state_dict-nonstrict",
                         lambda: judge_load_state_dict(source, target, strict=False))
    choices = [strict, loose]
    if source.format == "safetensors":
        choices.insert(0, LoaderChoice("safetensors.load_model",
                                       lambda: judge_load_model(source, target)))
    if applies_from_pretrained(source, target):
        pretrained = LoaderChoice("from_pretrained",
                                  lambda: judge_from_pretrained(source, target))
        # from_pretrained is what a Hugging Face layout is made for; a lone file keeps its own.
        choices.insert(0 if is_model_directory(source) else len(choices), pretrained)
    return choices


def is_model_directory(source: Manifest) -> bool:
    """A Hugging Face layout: a sharded index, or a directory read as its weights file (the
    manifest's path then names no checkpoint file)."""
    if source.format in HF_LAYOUT_FORMATS:
        return True
    name = source.path.rstrip("/").rsplit("/", 1)[-1]
    return not name.endswith(_FILE_SUFFIXES)


_FILE_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt", ".ckpt", ".json", ".metadata")


def _restore_choices(source: Manifest, target: Manifest) -> list[LoaderChoice]:
    judgements = tf_judgements(source, target)
    if not judgements:
        return []
    restore, *checks = judgements
    # restore keeps a checkpoint value without an object for one created later: not a failure.
    unused = {key: KeyCall(True, "a checkpoint value without an object in the model: restore "
                                 "keeps it for one created later; expect_partial() silences the "
                                 "warning, assert_consumed() raises")
              for key in source.by_key if key not in target.by_key}
    judge = replace(restore, calls=unused, decides_keys=True)
    return [LoaderChoice(j.verdict.name, _fixed(j)) for j in (judge, *checks)]


def _fixed(judgement: Judgement) -> Callable[[], Judgement]:
    return lambda: judgement


def _keras_choices(source: Manifest, target: Manifest) -> list[LoaderChoice]:
    if applies_load_weights(source, target):
        return [LoaderChoice("keras.load_weights" + ("-skip_mismatch" if skip else ""),
                             _weights_judge(source, target, skip)) for skip in (False, True)]
    if applies_legacy(source, target):  # by order (the default), then by_name=True
        return [LoaderChoice("keras.load_weights" + ("-by_name" if by_name else "")
                             + ("-skip_mismatch" if skip else ""),
                             _legacy_judge(source, target, by_name, skip))
                for by_name in (False, True) for skip in (False, True)]
    return []


def _weights_judge(source: Manifest, target: Manifest, skip: bool) -> Callable[[], Judgement]:
    return lambda: judge_load_weights(source, target, skip)


def _legacy_judge(source: Manifest, target: Manifest, by_name: bool,
                  skip: bool) -> Callable[[], Judgement]:
    return lambda: judge_legacy(source, target, by_name, skip)


def loader_choices(source: Manifest, target: Manifest) -> list[LoaderChoice]:
    """The loaders that apply, the default first; empty for checkpoint vs checkpoint."""
    if applies_to_torch(source, target):
        return _torch_choices(source, target)
    keras_choices = _keras_choices(source, target)
    if keras_choices:
        return keras_choices
    if target.metadata.get("key_space") == "tf-object-graph" and source.format in TF_FORMATS:
        return _restore_choices(source, target)
    gguf = gguf_pretrained_judge(source, target)
    if gguf is not None:
        return [LoaderChoice(GGUF_PRETRAINED, _fixed(gguf))]
    return []


def listed_beside_parity(source: Manifest, target: Manifest) -> list[Judgement]:
    """Loader verdicts listed next to key parity where a pair is not in its loader's key
    space (a TF checkpoint against a TensorFlow target, a Keras target without the facts its
    loader pairs by): the dry runs' view of ``load_weights`` and ``restore``, which pair by
    ckptdiff's keys and so cannot judge."""
    if framework_of(target) == "tensorflow" and source.format in TF_FORMATS:
        return tf_judgements(source, target)
    if target.format == "keras-model" and (source.format in KERAS_FORMATS
                                           or source.format in TF_FORMATS):
        return keras_judgements(source, target)
    return []


def choose(source: Manifest, target: Manifest, name: str | None) -> tuple[Judgement | None,
                                                                          list[Judgement]]:
    """The judging loader's judgement (None: key parity) and the others' that apply.

    ``name`` (``diff --loader``) picks the judge; a name that does not apply is a
    :class:`UsageError` listing the ones that do.
    """
    choices = loader_choices(source, target)
    names = [c.name for c in choices] or [KEY_PARITY]
    if choices:
        names.append(KEY_PARITY)
    if name is not None and name not in names:
        raise UsageError(f"loader {name!r} does not apply to a {source.format} checkpoint and a "
                         f"{target.format} target; choose from {', '.join(names)}")
    if not choices:
        return None, listed_beside_parity(source, target)
    if name == KEY_PARITY:
        return None, [c.judge() for c in choices]
    chosen = next((c for c in choices if c.name == name), choices[0])
    others = [c.judge() for c in choices if c is not chosen]
    return chosen.judge(), others
