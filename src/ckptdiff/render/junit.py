"""JUnit XML, the test-report format CI systems ingest (GitLab, Jenkins, Azure, CircleCI).

One ``<testcase>`` per checked key group: groups of findings (a ``<failure>`` for errors,
``<skipped>`` for warnings, ``<system-out>`` for info) and groups of matched keys, which pass.
``assertions`` on a testcase counts the keys it stands for; ``<testsuite>`` counts are its cases.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence

from ckptdiff.diffing.report import Report
from ckptdiff.render.github import explain_row
from ckptdiff.render.grouping import fold
from ckptdiff.render.rows import Row, finding_rows, summary_counts, verdict

# Characters XML 1.0 cannot carry even escaped; hostile checkpoints may put them in keys.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(text: str) -> str:
    """``text`` with characters XML cannot hold written as ``\\xNN``."""
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _element(parent: ET.Element, tag: str, text: str | None = None,
             **attributes: str) -> ET.Element:
    child = ET.SubElement(parent, tag, {k: xml_text(v) for k, v in attributes.items()})
    if text is not None:
        child.text = xml_text(text)
    return child


def _finding_case(suite: ET.Element, row: Row) -> str:
    """Add the testcase of ``row``; returns its outcome (``failure``, ``skipped``, ``passed``)."""
    case = _element(suite, "testcase", classname=f"ckptdiff.{row.kind}", name=row.pattern,
                    assertions=str(row.count), time="0")
    headline = explain_row(row)
    lines = [headline, *(f.key for f in row.findings)]
    if row.note:
        lines.append(row.note)
    detail = "\n".join(lines)
    if row.severity == "error":
        _element(case, "failure", detail, type=row.kind, message=row.note or headline)
        return "failure"
    if row.severity == "warning":
        _element(case, "skipped", message=f"warning: {row.note or headline}")
        _element(case, "system-out", detail)
        return "skipped"
    _element(case, "system-out", f"info: {detail}")
    return "passed"


def _matched_cases(suite: ET.Element, report: Report) -> None:
    with_findings = {f.key for f in report.findings}
    keys = [k for k in report.matched_keys if k not in with_findings]
    if not report.matched_keys and report.matched:
        # A report built without its matched keys still counts them, as one passing case.
        _element(suite, "testcase", classname="ckptdiff.matched",
                 name=f"{report.matched} matched keys", assertions=str(report.matched), time="0")
        return
    for group in _by_module_shape(keys):
        for pattern, indices in fold(group):
            _element(suite, "testcase", classname="ckptdiff.matched", name=pattern,
                     assertions=str(len(indices)), time="0")


def _by_module_shape(keys: Sequence[str]) -> list[list[str]]:
    """Keys grouped by module, modules with the same tensor names together (first-seen order).

    Folding within such a group gives one case per repeated block (``layer.{0..11}.{weight,bias}``)
    instead of mixing unrelated modules that happen to share a tensor name.
    """
    modules: dict[str, list[str]] = {}
    for key in keys:
        modules.setdefault(key.rpartition(".")[0], []).append(key)
    groups: dict[tuple[str, ...], list[str]] = {}
    for members in modules.values():
        names = tuple(k.rpartition(".")[2] for k in members)
        groups.setdefault(names, []).extend(members)
    return list(groups.values())


def testsuite(report: Report) -> ET.Element:
    """The ``<testsuite>`` of one report, its counts set from its cases."""
    suite = ET.Element("testsuite", {"name": xml_text(
        f"ckptdiff {report.source.path} -> {report.target.path}")})
    properties = _element(suite, "properties")
    for name, value in (("source", report.source.path), ("source_format", report.source.format),
                        ("target", report.target.path), ("target_format", report.target.format),
                        ("verdict", verdict(report)), ("summary", summary_counts(report))):
        _element(properties, "property", name=name, value=value)
    outcomes = [_finding_case(suite, row) for row in finding_rows(report.findings)]
    _matched_cases(suite, report)
    suite.set("tests", str(len(suite.findall("testcase"))))
    suite.set("failures", str(outcomes.count("failure")))
    suite.set("errors", "0")
    suite.set("skipped", str(outcomes.count("skipped")))
    suite.set("time", "0")
    return suite


def render_suites(reports: Sequence[Report]) -> str:
    """A ``<testsuites>`` document holding one suite per report, totals summed."""
    root = ET.Element("testsuites", {"name": "ckptdiff"})
    for report in reports:
        root.append(testsuite(report))
    for count in ("tests", "failures", "errors", "skipped"):
        root.set(count, str(sum(int(s.get(count, "0")) for s in root)))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, "unicode") + "\n"


class JunitRenderer:
    """JUnit XML: failing key groups are failed test cases, matched groups pass."""

    name = "junit"

    def render(self, report: Report, *, color: bool = False, width: int | None = None) -> str:
        """One report as a one-suite document."""
        return render_suites([report])

    def render_many(self, reports: Sequence[Report]) -> str:
        """Several reports (``ckptdiff check``) in one document."""
        return render_suites(reports)
