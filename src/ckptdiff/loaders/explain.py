"""``diff --explain``: a dry run of the load, stated per framework call.

Findings say what differs; this says what the framework would *do* about it, from its own rules:
torch ``load_state_dict`` strict and not (``loaders.torch``), Keras ``load_weights`` for each file
kind (``loaders.keras``), TensorFlow ``Checkpoint.restore`` and its status assertions
(``loaders.tf``). The framework is the target's: that is the code doing the loading. Nothing is
loaded and no framework is imported; the statements are computed from the two manifests.
"""

from __future__ import annotations

from collections.abc import Sequence

from ckptdiff.loaders.frameworks import framework_of
from ckptdiff.loaders.keras import explain_keras
from ckptdiff.loaders.statement import LoadStatement
from ckptdiff.loaders.tf import explain_tf
from ckptdiff.loaders.torch import explain_torch
from ckptdiff.manifest import Manifest

_OUTCOME_WORDS = {"raises": "raises", "loads": "loads", "partial": "loads partly",
                  "casts": "casts", "moves": "moves", "not_applicable": "does not apply"}


def explain_load(source: Manifest, target: Manifest) -> tuple[LoadStatement, ...]:
    """What loading ``source`` into ``target`` would do, one statement per call and outcome."""
    framework = framework_of(target)
    if framework == "torch" and framework_of(source) in ("torch", None):
        return tuple(explain_torch(source, target))
    if framework == "keras":
        return tuple(explain_keras(source, target))
    if framework == "tensorflow" and framework_of(source) == "tensorflow":
        return tuple(explain_tf(source, target))
    if framework is None:
        message = (f"the target's format {target.format!r} names no framework, so there is no "
                   "load call to replay")
        return (LoadStatement("ckptdiff", "(none)", "not_applicable", message),)
    return (LoadStatement(framework, "(load)", "not_applicable",
                          f"a {source.format} checkpoint does not load into a {target.format} "
                          "target directly: convert it first (the findings list the keys)"),)


def render_explain(statements: Sequence[LoadStatement], markdown: bool = False) -> str:
    """The dry-run section shown after the findings table (plain text or markdown)."""
    if not statements:
        return ""
    if markdown:
        lines = ["", "### Load dry run", ""]
        lines += [f"- **{s.framework}** `{s.call}`: **{_OUTCOME_WORDS.get(s.outcome, s.outcome)}**"
                  f" — {s.message}" for s in statements]
        return "\n".join(lines) + "\n"
    lines = ["", "Load dry run (what the framework would do with this checkpoint):"]
    for statement in statements:
        outcome = _OUTCOME_WORDS.get(statement.outcome, statement.outcome)
        lines.append(f"  {statement.framework}: {statement.call}")
        lines.append(f"    {outcome}: {statement.message}")
    return "\n".join(lines) + "\n"
