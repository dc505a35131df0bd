"""Turn a report's findings into grouped rows, the unit every human-facing renderer shows."""

from __future__ import annotations

import re
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from operator import attrgetter

from ckptdiff.diffing.report import SEVERITIES, Finding, Report, TensorSide
from ckptdiff.rename.snippet import transformers_snippet
from ckptdiff.render.grouping import fold

KIND_ORDER = ("missing", "unexpected", "shape", "dtype", "device")
# Kinds whose two sides are compared: rows group keys with identical sides.
_COMPARED = ("shape", "dtype", "device")


@dataclass(frozen=True)
class Row:
    """Findings of one kind and severity whose keys fold into one pattern."""

    severity: str
    kind: str
    pattern: str
    findings: tuple[Finding, ...]
    source: str
    target: str
    note: str | None

    @property
    def count(self) -> int:
        """How many keys the row stands for."""
        return len(self.findings)


def describe(side: TensorSide | None) -> str:
    """``[2, 768] float32 cuda:0`` (device only when known)."""
    if side is None:
        return "—"
    text = f"[{', '.join(str(d) for d in side.shape)}] {side.dtype}"
    return f"{text} {side.device}" if side.device else text


def _sides(findings: Sequence[Finding], which: str) -> str:
    if not findings:
        return "various shapes"
    first = getattr(findings[0], which)
    # Findings share their sides (``TensorSide.of``): identity settles most without hashing.
    if all(side is first or side == first for side in map(attrgetter(which), findings)):
        return describe(first)
    return "various shapes"


def finding_rows(findings: Sequence[Finding]) -> list[Row]:
    """Rows ordered by severity, then kind, then first appearance; keys folded within groups."""
    groups: dict[tuple[str, str, Hashable], list[Finding]] = {}
    for finding in findings:
        signature: Hashable
        if finding.kind in _COMPARED:
            signature = (finding.source, finding.target, finding.note)
        else:
            signature = (finding.note if finding.tied_to is None else finding.tied_to,)
        groups.setdefault((finding.severity, finding.kind, signature), []).append(finding)
    rows: list[Row] = []
    for (severity, kind, _), members in groups.items():
        for pattern, indices in fold([f.key for f in members]):
            chosen = tuple(members[i] for i in indices)
            rows.append(Row(severity, kind, pattern, chosen, _sides(chosen, "source"),
                            _sides(chosen, "target"), _with_names(chosen[0].note, chosen)))
    kind_rank = {k: i for i, k in enumerate(KIND_ORDER)}
    rows.sort(key=lambda r: (SEVERITIES.index(r.severity), kind_rank.get(r.kind, len(KIND_ORDER))))
    return rows


def _with_names(note: str | None, findings: Sequence[Finding]) -> str | None:
    """``note`` and, where the judging loader's keys are not the names users know (Keras
    saving paths, TF object paths), those names folded: ``named enc/{kernel,bias}``."""
    names = [n for f in findings if f.names is not None
             for n in (f.names[1] if f.names[1] is not None else f.names[0],) if n]
    if not names:
        return note
    folded = [pattern for pattern, _ in fold(names)]
    shown = ", ".join(folded[:3]) + (f", … {len(folded) - 3} more" if len(folded) > 3 else "")
    return f"{note}\nnamed {shown}" if note else f"named {shown}"


def verdict(report: Report) -> str:
    """``compatible`` or ``INCOMPATIBLE``."""
    return "compatible" if report.compatible else "INCOMPATIBLE"


def judged_by(report: Report) -> str:
    """`` by torch.nn.Module.load_state_dict(strict=True)``: the loader ``compatible`` follows
    (empty for a report without verdicts)."""
    verdict_ = report.judged_by
    return "" if verdict_ is None else f" by {verdict_.loader}"


def verdict_reason(report: Report) -> str | None:
    """The judging loader's one-line reason, or None without verdicts."""
    return None if report.judged_by is None else report.judged_by.reason


def outlook(report: Report) -> str | None:
    """``after strip prefix 'module.' (14 keys): 2 shape mismatches remain: 8.weight [5, 32] vs
    [10, 32], …`` — what the confident fix leaves; None when there is no fix to apply."""
    after = report.after_fix
    if after is None:
        return None
    applied = [f"{after.renamed} keys"] if after.renamed or not after.converted else []
    if after.converted:
        applied.append(f"{after.converted} {_plural('conversion', after.converted)}")
    head = f"after {after.fix} ({', '.join(applied)})"
    if not after.remaining:
        return f"{head}: it loads" if after.loads else f"{head}: no error remains"
    kinds: dict[str, int] = {}
    for finding in after.remaining:
        kinds[finding.kind] = kinds.get(finding.kind, 0) + 1
    counts = ", ".join(f"{n} {_plural(_KIND_NOUNS.get(kind, kind), n)}"
                       for kind, n in kinds.items())
    shown = [f"{f.key} {_shape(f.source)} vs {_shape(f.target)}" if f.kind == "shape" else f.key
             for f in after.remaining[:3]]
    more = f", … ({len(after.remaining) - 3} more)" if len(after.remaining) > 3 else ""
    verb = "remains" if len(after.remaining) == 1 else "remain"
    return f"{head}: {counts} {verb}: {', '.join(shown)}{more}{_lora_tail(report)}"


def _lora_tail(report: Report) -> str:
    """LoRA adapter tensors that remain: the user's call (merge or drop), told in unpaired."""
    # Merged adapters are no tail: the outlook performs the conversions (their keys are fixed).
    told = sum(1 for u in report.unpaired if u.reason.startswith("LoRA adapter"))
    if told:
        return f"; {told} LoRA adapter tensors merge or drop only when told (see unpaired)"
    return ""


def _plural(noun: str, count: int) -> str:
    if count == 1:
        return noun
    return noun + ("es" if noun.endswith("ch") else "s")


def _shape(side: TensorSide | None) -> str:
    return "—" if side is None else f"[{', '.join(str(d) for d in side.shape)}]"


_KIND_NOUNS = {"shape": "shape mismatch", "missing": "missing key",
               "unexpected": "unexpected key", "dtype": "dtype change"}


def summary_counts(report: Report) -> str:
    """``3 missing, 2 shape, 190 matched`` (non-zero finding kinds, then matched)."""
    summary = report.summary
    parts = [f"{n} {kind}" for kind, n in summary.items()
             if n and kind not in ("matched", "errors", "warnings", "info")]
    parts.append(f"{summary['matched']} matched")
    return ", ".join(parts)


def side_line(label: str, path: str, fmt: str, tensors: int, container_key: str | None) -> str:
    """``source: ckpt.pth (torch-zip, 201 tensors, container 'state_dict')``."""
    container = f", container '{container_key}'" if container_key else ""
    return f"{label}: {path} ({fmt}, {tensors} tensors{container})"


def transformers_code(report: Report) -> list[str]:
    """transformers 5.x ``from_pretrained`` code for the report's renames and conversions.

    Only where transformers loads the target (a ``from_pretrained`` verdict) and not where it
    loads the checkpoint as it is (registering a mapping would replace the model's own).
    Checked on every source key of the report, so a report without its matched keys (the keys a
    converter might catch by mistake) gets none.
    """
    judged = [v for v in report.verdicts if v.framework == "transformers"]
    if len(report.matched_keys) != report.matched or not judged:
        return []
    if judged[0].loads:
        return [f"# {judged[0].loader} loads it as it is: nothing to register"]
    sources = {*report.matched_keys, *(f.key for f in report.findings if f.source is not None)}
    targets = {*report.matched_keys, *(f.key for f in report.findings if f.target is not None)}
    live = re.fullmatch(r"<(\w+) instance>", report.target.path)
    model_class = live.group(1) if live and report.target.format == "torch-module" else None
    return transformers_snippet(report.rules, report.suggestions, report.conversions, sources,
                                targets, model_class)
