"""``optimizer`` findings: optimizer state and training bookkeeping measured against the target.

Severities keep ``compatible`` about loading the model's weights (the contract): optimizer state
never makes a diff incompatible on its own.

- A slot whose variable the target does not have (an *orphaned* slot) is a ``warning``: restoring
  the optimizer with the checkpoint fails (TensorFlow's ``assert_consumed()`` reports it as an
  unresolved object), while the variable itself is already an ``unexpected`` error.
- Other slots and bookkeeping (``iter``, ``save_counter``) against a live model are ``info``:
  loading the weights ignores them. Against another checkpoint they stay ``unexpected``, except
  ``save_counter`` against a TensorFlow checkpoint: every restoring ``Checkpoint`` has its own.
- A torch optimizer state dict whose parameter count differs from the target's trainable
  parameters is a ``warning`` with the counts: ``optimizer.load_state_dict`` raises for an
  optimizer over them (the note says whether one over ``model.parameters()`` would accept it).
"""

from __future__ import annotations

from functools import cached_property

from ckptdiff.diffing.report import Finding, TensorSide
from ckptdiff.loaders.frameworks import framework_of
from ckptdiff.loaders.optimizer_slots import (
    group_total,
    optimizer_summaries,
    slot_owners,
    unique_parameters,
)
from ckptdiff.manifest import Manifest, TensorInfo

TRAINING_STATE_KINDS = ("optimizer_slot", "other")

_STEP_NAMES = frozenset({"iter", "iterations", "global_step", "step"})
_HYPERPARAMETER_NAMES = frozenset({"learning_rate", "lr", "beta_1", "beta_2", "decay", "epsilon",
                                   "rho", "momentum", "loss_scale"})

_ORPHAN_EFFECT = {
    "tensorflow": "tf.train.Checkpoint(..., optimizer=...).restore(...).assert_consumed() raises "
                  "'Unresolved object in checkpoint (root).optimizer…', expect_partial() hides it",
    "torch": "optimizer.load_state_dict() meets a parameter group of another size",
    "keras": "the optimizer's saved variables no longer line up with the model's",
}


_GROUP_ERROR = ("'loaded state dict contains a parameter group that doesn't match the size of "
                "optimizer's group'")
_GROUPS_ERROR = "its group sizes, or the number of groups, cannot match"


class TrainingStateJudge:
    """Decides the finding of each source tensor of optimizer state the target does not have."""

    def __init__(self, source: Manifest, target: Manifest) -> None:
        self._source = source
        self._target = target
        self._live = bool(target.metadata.get("live_model"))
        framework = framework_of(source)
        # Optimizer state is torch's, Keras' or TensorFlow's; other tools' files hold none.
        self._framework = framework if framework in _ORPHAN_EFFECT else "torch"
        # tf.train.Checkpoint.restore creates the restoring Checkpoint's save_counter, so a
        # target written by Checkpoint.write() (which has none) still takes it.
        self._restores_own_counter = framework_of(target) == "tensorflow"

    def finding(self, info: TensorInfo) -> Finding | None:
        """The ``optimizer`` finding for ``info`` (absent from the target), or None where it is an
        ordinary ``unexpected`` key (not training state, or a checkpoint target that keeps it)."""
        if info.kind not in TRAINING_STATE_KINDS:
            return None
        side = TensorSide.of(info)
        owner = self._owners.get(info.key)
        if owner is not None and not self._has_variable(owner):
            note = (f"optimizer state of a variable the target does not have (its key is "
                    f"unexpected): {_ORPHAN_EFFECT[self._framework]}; loading the model's "
                    "weights is unaffected")
            return Finding("optimizer", info.key, "warning", side, None, note)
        if self._restores_own_counter and info.key == "save_counter":
            return Finding("optimizer", info.key, "info", side, None, bookkeeping_note(info.key))
        if not self._live:
            return None
        if info.kind == "optimizer_slot":
            return Finding("optimizer", info.key, "info", side, None,
                           "optimizer state: loading the model's weights ignores it")
        return Finding("optimizer", info.key, "info", side, None, bookkeeping_note(info.key))

    # Built on the first tensor of training state: a diff of weights alone (most) needs none.
    @cached_property
    def _owners(self) -> dict[str, str]:
        return slot_owners(self._source, self._target)

    @cached_property
    def _target_names(self) -> set[str | None]:
        # A target keyed as the checkpoint's restore pairs objects (TF object paths) says by key
        # alone which variables restore; otherwise names are compared across naming schemes.
        if self._target.metadata.get("key_space") == "tf-object-graph":
            return set()
        return {t.variable_name or t.key for t in self._target.tensors}

    def _has_variable(self, owner: str) -> bool:
        if owner in self._target.by_key:
            return True
        stored = self._source.by_key.get(owner)
        # Across naming schemes (a TF2 checkpoint against a Keras model) the variable's own
        # name (``seq/dense/kernel``) still says whether the target has it.
        return stored is not None and stored.variable_name in self._target_names


def bookkeeping_note(key: str) -> str:
    """What a bookkeeping entry (``save_counter``, ``iter``, a learning rate) is, who uses it."""
    name = key.rsplit("/" if "/" in key else ".", 1)[-1].strip("_").lower()
    if name == "save_counter":
        return ("tf.train.Checkpoint's save counter (the N of ckpt-N): restored into the "
                "restoring Checkpoint's own counter; loading the model's weights ignores it")
    if name in _STEP_NAMES:
        return ("the optimizer's step count: restored only with the optimizer; a Checkpoint "
                "without it leaves it unresolved (assert_consumed(): 'Unresolved object in "
                "checkpoint: (root).optimizer.iter'; expect_partial() hides it); loading the "
                "model's weights ignores it")
    if name in _HYPERPARAMETER_NAMES:
        return ("an optimizer hyperparameter stored as a variable: restored only with the "
                "optimizer; loading the model's weights ignores it")
    return "training bookkeeping: loading the model's weights ignores it"


def optimizer_group_findings(source: Manifest, target: Manifest) -> list[Finding]:
    """Torch optimizer state whose parameter count differs from the target's trainable
    parameters: ``optimizer.load_state_dict`` raises for an optimizer over those."""
    if target.format != "torch-module":
        return []
    parameters = unique_parameters(target)
    trainable = [p for p in parameters if p.trainable]
    findings: list[Finding] = []
    for summary in optimizer_summaries(source):
        total = group_total(summary)
        if total == len(trainable):
            continue
        groups = len(summary["params_per_group"])
        sizes = "+".join(str(n) for n in summary["params_per_group"])
        error = _GROUP_ERROR if groups == 1 else _GROUPS_ERROR
        alternative = (f"; one over model.parameters() (all {len(parameters)}) accepts it"
                       if total == len(parameters) and groups == 1 else
                       f"; so does one over model.parameters() ({len(parameters)})")
        note = (f"the saved optimizer holds {total} parameters in {groups} group"
                f"{'s' if groups != 1 else ''} ({sizes}), state for "
                f"{summary.get('state_entries', '?')}; the target has {len(trainable)} trainable "
                f"parameters: optimizer.load_state_dict raises ValueError for an optimizer over "
                f"them ({error}){alternative}")
        key = summary.get("key") or "optimizer"
        findings.append(Finding("optimizer", str(key), "warning", None, None, note))
    return findings
