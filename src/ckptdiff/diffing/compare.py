"""Diff any source against any target: resolve both to manifests (a GGUF and a Hugging Face side
in one key space), match them, drop ignored keys.

The one composition the API, ``ckptdiff check`` and the pytest helper share, kept below them so
that none of them reaches up into another.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from ckptdiff.diffing.match import DEFAULT_LOADER, diff_manifests
from ckptdiff.diffing.outlook import parity_verdict
from ckptdiff.diffing.report import Report
from ckptdiff.loaders.keras_legacy_weights import BY_NAME_LOADER
from ckptdiff.manifest import Manifest
from ckptdiff.targets.gguf_names import in_gguf_key_space, unmapped_keys, unmapped_note
from ckptdiff.targets.keras.keyspace import in_keras_key_space
from ckptdiff.targets.resolve import Source, resolve


def diff(
    source: Source,
    target: Source,
    *,
    key: str | None = None,
    target_key: str | None = None,
    model_kwargs: Mapping[str, Any] | None = None,
    ignore: Iterable[str] = (),
    loader: str | None = None,
) -> Report:
    """Why ``source`` (a checkpoint) would or would not load into ``target``.

    ``ignore`` holds glob patterns of keys whose findings are dropped (e.g. ``classifier.*``);
    ``loader`` names the judging loader (``diff --loader``; None: the pair's default).
    """
    stored, expected = resolve_pair(source, target, key=key, target_key=target_key,
                                    model_kwargs=model_kwargs, loader=loader)
    report = note_gguf_names(diff_manifests(stored, expected, loader or DEFAULT_LOADER),
                             stored, expected)
    return apply_ignore(report, ignore)


def resolve_pair(source: Source, target: Source, *, key: str | None = None,
                 target_key: str | None = None,
                 model_kwargs: Mapping[str, Any] | None = None,
                 loader: str | None = None) -> tuple[Manifest, Manifest]:
    """Both sides as manifests in one key space: a live model described as the source's loader
    pairs it (a Keras model by TF object paths against a TF2 checkpoint; a Keras file and model
    by saving path, or by legacy layer order, or by layer name for ``loader``
    ``keras.load_weights-by_name*``), a Hugging Face side in GGUF names against a GGUF."""
    stored = resolve(source, key=key)
    expected = resolve(target, key=target_key, model_kwargs=model_kwargs, against=stored)
    by_name = (loader or "").startswith(BY_NAME_LOADER)
    return in_gguf_key_space(*in_keras_key_space(stored, expected, by_name=by_name))


def note_gguf_names(report: Report, source: Manifest, target: Manifest) -> Report:
    """Findings about tensors llama.cpp's converter cannot name say so; dtype findings against a
    GGUF say what its types are (a converted copy, not something ``load_state_dict`` casts)."""
    unmapped = unmapped_keys((source, target))
    one_gguf = (source.format == "gguf") != (target.format == "gguf")
    if not unmapped and not one_gguf:
        return report
    findings = []
    for finding in report.findings:
        if finding.key in unmapped:
            finding = replace(finding, note=unmapped_note(finding.key, unmapped[finding.key]))
        elif one_gguf and finding.kind == "dtype" and finding.source and finding.target:
            in_gguf, other = ((finding.source, finding.target) if source.format == "gguf"
                              else (finding.target, finding.source))
            finding = replace(finding, note=(
                f"the GGUF holds {in_gguf.dtype} where the other side holds {other.dtype}: "
                "the converter's choice; transformers' gguf_file loading dequantizes it"))
        findings.append(finding)
    return replace(report, findings=tuple(findings))


def apply_ignore(report: Report, patterns: Iterable[str]) -> Report:
    """The report without findings (and suggestions) whose key matches one of ``patterns``."""
    globs = tuple(patterns)
    if not globs:
        return report

    def ignored(key: str) -> bool:
        return any(fnmatch.fnmatchcase(key, glob) for glob in globs)

    kept = replace(
        report,
        findings=tuple(f for f in report.findings if not ignored(f.key)),
        suggestions=tuple(s for s in report.suggestions
                          if not (ignored(s.source_key) or ignored(s.target_key))),
        unpaired=tuple(u for u in report.unpaired
                       if not ignored(u.source_key or u.target_key or "")),
    )
    dropped = {f.key for f in report.findings if ignored(f.key)}
    return accept_keys(kept, dropped, f"--ignore {', '.join(globs)}")


def accept_keys(report: Report, keys: set[str], why: str) -> Report:
    """``report`` after a policy accepted (ignored or allowed) the findings of ``keys``.

    Key parity is judged again from the findings left. A loader's verdict stays a fact, except
    that a failing one whose every named key the policy accepted reads as accepted: the user
    said those keys may stay as the loader leaves them (e.g. a reinitialised head).
    """
    if not report.verdicts:
        return report
    judged, *others = report.verdicts
    if judged.framework == "ckptdiff":
        errors = [f for f in report.findings if f.severity == "error"]
        judged = replace(parity_verdict(errors), default=True)
    elif not judged.loads and judged.keys and set(judged.keys) <= keys:
        judged = replace(judged, loads=True,
                         reason=f"{judged.reason}; accepted by policy ({why})")
    return replace(report, verdicts=(judged, *others))
