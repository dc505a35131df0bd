"""GitHub workflow commands: syntax of every line, escaping, one annotation per finding group."""

from __future__ import annotations

import re
from urllib.parse import unquote

import pytest
from tests.golden.fixed_report import fixed_report
from tests.helpers import manifest, t

from ckptdiff.diffing.match import diff_manifests
from ckptdiff.render.github import (
    GithubRenderer,
    annotation_file,
    escape_data,
    escape_property,
    workflow_command,
)
from ckptdiff.render.rows import finding_rows

# ::command key=value,key=value::message, nothing unescaped that would end a part early.
PROPERTY = r"[A-Za-z]+=[^,:\r\n]*"
LINE = re.compile(rf"^::(error|warning|notice)( {PROPERTY}(,{PROPERTY})*)?::[^\r\n]*$")
BARE_PERCENT = re.compile(r"%(?!25|0D|0A|3A|2C)")


def parse(line: str) -> tuple[str, dict[str, str], str]:
    match = re.match(r"^::(\w+)(?: ([^:]*))?::(.*)$", line)
    assert match is not None, line
    properties = dict(p.split("=", 1) for p in (match[2] or "").split(",") if p)
    return match[1], {k: unquote(v) for k, v in properties.items()}, unquote(match[3])


def test_every_line_is_a_workflow_command() -> None:
    output = GithubRenderer().render(fixed_report())
    assert output.endswith("\n")
    for line in output.splitlines():
        assert LINE.match(line), line
        assert not BARE_PERCENT.search(line), line


def test_one_annotation_per_group_with_the_severity_as_command() -> None:
    report = fixed_report()
    rows = finding_rows(report.findings)
    lines = GithubRenderer().render(report).splitlines()
    group_lines = [parse(line) for line in lines[: len(rows)]]
    expected = [{"error": "error", "warning": "warning", "info": "notice"}[r.severity]
                for r in rows]
    assert [command for command, _, _ in group_lines] == expected
    for row, (_, properties, message) in zip(rows, group_lines, strict=True):
        assert properties["title"] == f"ckptdiff {row.kind}: {row.pattern}"
        assert properties["file"] == "released/v1.2.safetensors"
        assert message.startswith(row.pattern)
    # Then one notice per rename rule and the summary.
    assert "strip prefix 'module.'" in parse(lines[len(rows)])[2]
    command, properties, message = parse(lines[-1])
    assert (command, properties) == ("notice", {"title": "ckptdiff"})
    assert message.startswith("INCOMPATIBLE: ")


def test_escaping_round_trips_awkward_text() -> None:
    nasty = "a%b\r\nc:d,e%25"
    assert escape_data(nasty) == "a%25b%0D%0Ac:d,e%2525"
    assert escape_property(nasty) == "a%25b%0D%0Ac%3Ad%2Ce%2525"
    assert unquote(escape_property(nasty)) == nasty
    line = workflow_command("error", nasty, title=nasty, file=None)
    assert LINE.match(line) and "file=" not in line
    assert parse(line) == ("error", {"title": nasty}, nasty)


def test_awkward_key_stays_on_one_line() -> None:
    source = manifest(t("odd\nkey,with:%", 2), path="ckpt.safetensors")
    report = diff_manifests(source, manifest(path="pkg.m:build", live=True))
    lines = GithubRenderer().render(report).splitlines()
    assert len(lines) == 2 and all(LINE.match(line) for line in lines)
    assert parse(lines[0])[1]["title"] == "ckptdiff unexpected: odd\nkey,with:%"


@pytest.mark.parametrize("path, expected", [
    ("released/v1.2.safetensors", "released/v1.2.safetensors"),
    ("snapshots/model.manifest.json", "snapshots/model.manifest.json"),
    ("pkg.models:build", None),
    ("models/net.py:build", None),
    ("<Net object>", None),
    ("/abs/ckpt.pth", None),
    ("C:\\ckpt.pth", None),
    ("s3://bucket/ckpt.pth", None),
    ("", None),
])
def test_file_property_only_for_relative_file_paths(path: str, expected: str | None) -> None:
    assert annotation_file(path) == expected


def test_compatible_report_is_one_summary_notice() -> None:
    base = manifest(t("w", 2))
    lines = GithubRenderer().render(diff_manifests(base, base)).splitlines()
    assert lines == ["::notice title=ckptdiff::compatible: 1 matched (source m -> target m)"]
