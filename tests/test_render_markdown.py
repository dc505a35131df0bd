"""Markdown summary: verdict and counts up front, the folded table inside <details>."""

from __future__ import annotations

from tests.golden.fixed_report import fixed_report
from tests.helpers import manifest, t

from ckptdiff.diffing.match import diff_manifests
from ckptdiff.render.markdown import COMMENT_MARKER, MarkdownRenderer, code, plain
from ckptdiff.render.rows import finding_rows


def table_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("|")]


def test_verdict_counts_and_collapsible_table() -> None:
    report = fixed_report()
    text = MarkdownRenderer().render(report)
    lines = text.splitlines()
    assert lines[0] == COMMENT_MARKER
    assert lines[1] == ("### ❌ ckptdiff: INCOMPATIBLE by key parity (no loader: same keys, "
                        "same shapes)")
    assert lines[3].startswith("7 error findings: 2 missing, 3 unexpected, 2 shape")
    assert lines[4].startswith("after strip prefix 'module.' (2 keys): 1 unexpected key, "
                               "2 shape mismatches remain")
    assert "**7 errors**, 1 warning, 3 info" in text
    details = text.index("<details>")
    assert text.index("<summary>9 finding groups (11 findings)</summary>") > details
    assert text.index("</details>") > text.index("| severity |")
    rows = table_lines(text)
    assert len(rows) == 2 + len(finding_rows(report.findings))
    # Every row has six cells: no stray pipe from a key or a note split it.
    for row in rows:
        cells = row.replace("\\|", "").strip("|").split("|")
        assert len(cells) == 6, row


def test_awkward_text_is_escaped() -> None:
    assert code("a|b") == "`a\\|b`"
    assert code("x`y") == "``x`y``"
    assert code("`x") == "`` `x ``"
    assert plain("<b>&|\nnext") == "&lt;b&gt;&amp;\\|<br>next"
    text = MarkdownRenderer().render(fixed_report())
    assert "`stats\\|rate%<1>,x:y`" in text


def test_compatible_report_has_no_table() -> None:
    base = manifest(t("w", 2))
    text = MarkdownRenderer().render(diff_manifests(base, base))
    assert "### ✅ ckptdiff: compatible" in text
    assert "<details>" not in text and "**0 errors**" in text


def test_suggestions_are_listed_with_their_rule() -> None:
    text = MarkdownRenderer().render(fixed_report())
    assert "- strip prefix 'module.': 2 keys (confidence 0.99)" in text
    assert "`re.sub('^module\\\\.', '', key)` fixes 2 keys" in text


def test_several_reports_under_one_heading() -> None:
    base = manifest(t("w", 2))
    text = MarkdownRenderer().render_many([fixed_report(), diff_manifests(base, base)])
    assert text.startswith(COMMENT_MARKER + "\n## ❌ ckptdiff: 2 checks, 1 incompatible\n")
    assert text.count("### ") == 2 and text.count(COMMENT_MARKER) == 1
