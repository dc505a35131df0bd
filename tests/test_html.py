"""The HTML page and notebook fragments, read as text (the browser tests are beside this file)."""

from __future__ import annotations

import json
import re

from tests.helpers import manifest, t

from ckptdiff.api import diff
from ckptdiff.diffing.report import Report
from ckptdiff.graph.diff import diff_tree
from ckptdiff.manifest import Manifest
from ckptdiff.render import get_renderer
from ckptdiff.render.html import render_diff_html, render_manifest_html

HOSTILE = '</script><script>alert(1)</script><img src=x onerror=alert(1)>&amp;\u2028'
# Whatever makes a browser fetch something: attributes, CSS urls and imports, any URL at all.
FETCHING = re.compile(r"""\b(src|href|action|poster|srcset)\s*=|url\(|@import|https?://|//[a-z]""",
                      re.IGNORECASE)


def pair() -> tuple[Manifest, Manifest, Report]:
    target = manifest(*(t(f"model.layers.{i}.{n}", 4, 4) for i in range(6) for n in ("w", "b")),
                      t("head.weight", 2, 4))
    source = manifest(*(t(f"module.model.layers.{i}.{n}", 4, 4)
                        for i in range(6) for n in ("w", "b")),
                      t("module.head.weight", 3, 4))
    return source, target, diff(source, target)


def payload(page: str) -> dict[str, object]:
    match = re.search(r'<script type="application/json" id="ckptdiff-data">(.*?)</script>', page,
                      re.DOTALL)
    assert match is not None
    data: dict[str, object] = json.loads(match.group(1))
    return data


def test_page_is_self_contained() -> None:
    source, target, report = pair()
    for page in (render_diff_html(diff_tree(report, source, target)),
                 render_manifest_html(target)):
        assert page.startswith("<!DOCTYPE html>")
        assert not FETCHING.search(page), FETCHING.search(page)
        assert "default-src 'none'" in page  # and the CSP forbids every request anyway
        assert page.count("<script") == 2  # the JSON payload and the inline script


def test_hostile_keys_stay_text() -> None:
    target = manifest(t(HOSTILE, 2), t("ok", 2))
    source = manifest(t("ok", 2))
    page = render_diff_html(diff_tree(diff(source, target), source, target))
    assert "<script>alert" not in page and "<img src=x" not in page
    assert page.count("</script>") == 2
    keys = [row[0] for row in payload(page)["keys"]]  # type: ignore[attr-defined]
    assert HOSTILE in keys
    assert "&lt;/script&gt;" in page  # the findings table escapes it


def test_payload_holds_every_key_with_status_and_detail() -> None:
    source, target, report = pair()
    data = payload(render_diff_html(diff_tree(report, source, target)))
    statuses = data["statuses"]
    assert isinstance(statuses, list)
    rows = {key: (statuses[status], data["details"][detail])  # type: ignore[index]
            for key, status, detail in data["keys"]}  # type: ignore[attr-defined]
    assert len(rows) == len(source) + len(target)
    assert rows["module.head.weight"] == (["unexpected", "error"], "unexpected [3, 4] float32")
    assert rows["model.layers.0.w"][0] == ["renamed", "error"]
    tree = data["tree"]
    assert isinstance(tree, dict) and tree["o"] == 1
    module = next(c for c in tree["c"] if c["l"].startswith("module"))
    assert module["m"] == "error" and "renamed" in module["d"]


def test_summary_rules_and_tables_are_in_the_page() -> None:
    source, target, report = pair()
    page = render_diff_html(diff_tree(report, source, target))
    assert "INCOMPATIBLE" in page
    assert "<h2>Rename rules</h2>" in page and "<code>re.sub(&#x27;^module" in page
    assert "<h2>Suggested renames</h2>" in page and "<h2>Findings</h2>" in page


def test_html_renderer_from_a_report_alone() -> None:
    _, _, report = pair()
    page = get_renderer("html").render(report)
    assert "Only keys with findings are in the tree" in page
    assert payload(page)["mode"] == "diff"


def test_manifest_page_payload_folds_layers() -> None:
    _, target, _ = pair()
    tree = payload(render_manifest_html(target))["tree"]
    assert isinstance(tree, dict)
    labels = [(c["l"], c.get("x")) for c in tree["c"]]
    assert ("model.layers.{0..5}", 6) in labels


def test_report_repr_html_is_a_static_tree() -> None:
    source = manifest(*(t(f"enc.{i}.w", 9 if i in (1, 3) else 4, 4) for i in range(6)))
    target = manifest(*(t(f"enc.{i}.w", 4, 4) for i in range(6)))
    report = diff(source, target)
    fragment = report._repr_html_()
    assert "<script" not in fragment and "<details open>" in fragment
    assert "INCOMPATIBLE" in fragment and "shape [9, 4] → [4, 4] float32" in fragment
    assert repr(report).startswith("<Report INCOMPATIBLE")


def test_manifest_repr_html_is_capped() -> None:
    big = manifest(*(t(f"w{i}.{j}", i + 1) for i in range(400) for j in range(3)))
    fragment = big._repr_html_()
    assert "more in --format html" in fragment
    assert len(fragment) < 60_000
    small = manifest(*(t(f"layers.{i}.w", 4) for i in range(8)))
    assert "layers.{0..7} ×8" in small._repr_html_()
    assert repr(small).startswith("<Manifest test")
