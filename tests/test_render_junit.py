"""JUnit XML: parses, one testcase per key group (passing ones too), counts match the report."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace

from tests.golden.fixed_report import fixed_report
from tests.helpers import manifest, t

from ckptdiff.diffing.match import diff_manifests
from ckptdiff.diffing.report import Report
from ckptdiff.render.junit import JunitRenderer, xml_text
from ckptdiff.render.rows import finding_rows


def suite_of(report: Report) -> ET.Element:
    root = ET.fromstring(JunitRenderer().render(report))
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    for count in ("tests", "failures", "errors", "skipped"):
        assert root.get(count) == suite.get(count)
    return suite


def test_counts_are_consistent_with_cases_and_report() -> None:
    report = fixed_report()
    suite = suite_of(report)
    cases = suite.findall("testcase")
    rows = finding_rows(report.findings)
    assert int(suite.get("tests", "")) == len(cases)
    failed = [c for c in cases if c.find("failure") is not None]
    assert int(suite.get("failures", "")) == len(failed)
    assert int(suite.get("skipped", "")) == len([c for c in cases if c.find("skipped") is not None])
    assert suite.get("errors") == "0"
    assert int(suite.get("failures", "")) == len([r for r in rows if r.severity == "error"])
    assert int(suite.get("skipped", "")) == len([r for r in rows if r.severity == "warning"])
    # Every finding and every matched key without a finding is counted by exactly one case.
    with_findings = {f.key for f in report.findings}
    clean_matched = [k for k in report.matched_keys if k not in with_findings]
    assert sum(int(c.get("assertions", "")) for c in cases) == (
        len(report.findings) + len(clean_matched))


def test_matched_keys_are_passing_cases_folded_by_module() -> None:
    cases = suite_of(fixed_report()).findall("testcase")
    passing = {c.get("name"): c.get("assertions") for c in cases
               if c.get("classname") == "ckptdiff.matched"}
    assert passing == {"embed.weight": "1", "encoder.layer.{0,1}.{weight,bias}": "4",
                       "encoder.layer.2.bias": "1", "norm.{weight,bias,running_mean}": "3"}
    assert all(len(c) == 0 for c in cases if c.get("classname") == "ckptdiff.matched")


def test_failures_carry_keys_and_notes() -> None:
    cases = {c.get("name"): c for c in suite_of(fixed_report()).findall("testcase")}
    failure = cases["head.weight"].find("failure")
    assert failure is not None and failure.get("type") == "shape"
    assert failure.get("message") == "dim 0 is 2 in the source, 3 in the target"
    missing = cases["adapter.{down,up}.weight"].find("failure")
    assert missing is not None and "adapter.down.weight\nadapter.up.weight" in (missing.text or "")
    assert cases["encoder.layer.2.weight"].find("skipped") is not None
    info = cases["lm_head.weight"]
    assert info.find("failure") is None and info.find("skipped") is None
    assert "tied to embed.weight" in (info.findtext("system-out") or "")


def test_properties_describe_both_sides() -> None:
    suite = suite_of(fixed_report())
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert properties["source"] == "released/v1.2.safetensors"
    assert properties["target"] == "pkg.model:build"
    assert properties["verdict"] == "INCOMPATIBLE"


def test_compatible_report_has_no_failures() -> None:
    base = manifest(*(t(f"blocks.{i}.{p}", 2) for i in range(4) for p in ("weight", "bias")))
    suite = suite_of(diff_manifests(base, base))
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("1", "0", "0")
    (case,) = suite.findall("testcase")
    assert (case.get("name"), case.get("assertions")) == ("blocks.{0..3}.{weight,bias}", "8")


def test_report_without_matched_keys_still_counts_them() -> None:
    report = replace(fixed_report(), matched_keys=())
    cases = [c for c in suite_of(report).findall("testcase")
             if c.get("classname") == "ckptdiff.matched"]
    assert [(c.get("name"), c.get("assertions")) for c in cases] == [("10 matched keys", "10")]


def test_several_reports_sum_into_testsuites() -> None:
    base = manifest(t("w", 2))
    reports = [fixed_report(), diff_manifests(base, base)]
    root = ET.fromstring(JunitRenderer().render_many(reports))
    suites = root.findall("testsuite")
    assert len(suites) == 2
    for count in ("tests", "failures", "errors", "skipped"):
        assert int(root.get(count, "")) == sum(int(s.get(count, "")) for s in suites)


def test_characters_xml_cannot_hold_are_spelled_out() -> None:
    source = manifest(t("bad\x00key\x1b", 2))
    document = JunitRenderer().render(diff_manifests(source, manifest(live=True)))
    root = ET.fromstring(document)
    names = [c.get("name") for c in root.iter("testcase")]
    assert names == ["bad\\x00key\\x1b"]
    assert xml_text("ok\tline\n") == "ok\tline\n"
