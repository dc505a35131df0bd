"""Keras and TensorFlow verdicts, read off their dry runs (``loaders.keras``, ``loaders.tf``).

A call ``loads`` when it succeeds and fills every model variable: ``load_weights`` that ignores
leftover groups of the file still loads; ``skip_mismatch=True`` that leaves variables at their
initial values does not (it only warns); a TensorFlow ``restore`` loads when no model variable
is left without a value, whatever unused checkpoint values remain.
"""

from __future__ import annotations

from ckptdiff.loaders.common import KeySets
from ckptdiff.loaders.keras import explain_keras
from ckptdiff.loaders.statement import LoadStatement
from ckptdiff.loaders.tf import STATUS_CHECKS, explain_tf
from ckptdiff.loaders.verdict import Judgement, Verdict
from ckptdiff.manifest import Manifest

_SKIP = "skip_mismatch=True"


def _verdict(name: str, statement: LoadStatement, loads: bool) -> Judgement:
    reason = statement.message.split(". ", 1)[0].rstrip(".")
    return Judgement(Verdict(name, statement.call, statement.framework, loads, reason,
                             statement.keys))


def keras_judgements(source: Manifest, target: Manifest) -> list[Judgement]:
    """``model.load_weights(path)`` and its ``skip_mismatch=True`` form, as verdicts."""
    judgements = []
    for statement in explain_keras(source, target):
        if statement.framework != "keras" or statement.outcome in ("casts", "not_applicable"):
            continue
        if _SKIP in statement.call:
            judgements.append(_verdict("keras.load_weights-skip_mismatch", statement,
                                       statement.outcome == "loads"))
        else:
            judgements.append(_verdict("keras.load_weights", statement,
                                       statement.outcome in ("loads", "partial")))
    return judgements


def tf_judgements(source: Manifest, target: Manifest) -> list[Judgement]:
    """``tf.train.Checkpoint(...).restore(path)`` and its status checks, as verdicts."""
    unfilled = bool(KeySets.of(source, target).missing)  # model variables left without a value
    names = dict(zip(STATUS_CHECKS, ("tf.restore.assert_consumed",
                                     "tf.restore.assert_existing_objects_matched",
                                     "tf.restore.expect_partial"), strict=True))
    judgements = []
    for statement in explain_tf(source, target):
        if statement.outcome == "not_applicable":
            continue
        check = next((c for c in STATUS_CHECKS if statement.call.endswith(c)), None)
        name = "tf.restore" if check is None else names[check]
        loads = statement.outcome == "loads" or (statement.outcome == "partial" and not unfilled)
        judgements.append(_verdict(name, statement, loads))
    return judgements
