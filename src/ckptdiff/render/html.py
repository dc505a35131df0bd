"""``--format html``: one self-contained page (inline CSS and JS, no network) per diff or manifest.

The page carries its tree as an embedded JSON payload and draws rows only as they open (see
``assets/report.js``), so it opens fast for 100k keys. A Content-Security-Policy forbids every
request, so nothing is fetched even if a key happens to look like a URL.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import Any

from ckptdiff.diffing.report import Report
from ckptdiff.graph.diff import DiffTree, diff_tree
from ckptdiff.graph.manifest import manifest_graph
from ckptdiff.manifest import Manifest
from ckptdiff.render.html_payload import diff_payload, manifest_payload, script_json
from ckptdiff.render.manifest_view import summary_line
from ckptdiff.render.rows import finding_rows, side_line, summary_counts, verdict
from ckptdiff.render.tree import stats_text

TABLE_ROWS = 300  # rows of the findings and suggestions tables; the tree and search hold all
_CSP = ("default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
        "img-src data:; base-uri 'none'; form-action 'none'")


@cache
def asset(name: str) -> str:
    """The text of a file in ``render/assets`` (the page's CSS and JS)."""
    return resources.files("ckptdiff.render").joinpath("assets", name).read_text("utf-8")


def esc(text: object) -> str:
    """``text`` escaped for HTML content and attributes."""
    return html.escape(str(text), quote=True)


def page(title: str, header: str, sections_before: str, sections_after: str,
         payload: dict[str, Any]) -> str:
    """The whole document: header, search box and tree, other sections, payload and script."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{asset('report.css')}</style></head>\n<body>\n"
        f"<header>{header}</header>\n{sections_before}\n"
        '<h2>Tree</h2><div id="search"><input id="q" type="search" autocomplete="off" '
        'placeholder="Search keys (space-separated terms, case-insensitive)" '
        'aria-label="Search keys"><span id="count" class="dim"></span></div>\n'
        '<div id="results" hidden></div><div id="tree"><noscript>The tree needs JavaScript; '
        "the tables below do not.</noscript></div>\n"
        f"{sections_after}\n"
        f'<script type="application/json" id="ckptdiff-data">{script_json(payload)}</script>\n'
        f"<script>{asset('report.js')}</script>\n</body></html>\n"
    )


def table(headers: tuple[str, ...], rows: Sequence[tuple[str, ...]], total: int) -> str:
    """A table of already-escaped cells, with a line saying how many rows were left out."""
    head = "".join(f"<th>{h}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    more = (f'<p class="dim">and {total - len(rows)} more (search the tree for them)</p>'
            if total > len(rows) else "")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{more}"


def report_header(report: Report) -> str:
    """Verdict, counts, both sides and the summary chips of ``report``."""
    css = "verdict-ok" if report.compatible else "verdict-bad"
    mark = "✓" if report.compatible else "✗"
    sides = "<br>".join(esc(side_line(label, s.path, s.format, s.tensors, s.container_key))
                        for label, s in (("source", report.source), ("target", report.target)))
    chips = "".join(f"<li><b>{n}</b>{esc(kind)}</li>" for kind, n in report.summary.items() if n)
    return (f'<h1 class="{css}">{mark} {esc(verdict(report))}</h1>'
            f"<div>{esc(summary_counts(report))}</div>"
            f'<div class="sides dim mono">{sides}</div><ul class="chips">{chips}</ul>')


def rules_section(report: Report) -> str:
    """The rename rules (what to apply), or nothing."""
    if not report.rules:
        return ""
    items = "".join(f"<li><code>re.sub({esc(repr(r.pattern))}, {esc(repr(r.replacement))}, "
                    f"key)</code> <span class=\"dim\"># {r.matches} keys</span></li>"
                    for r in report.rules)
    return f'<h2>Rename rules</h2><ul id="rules">{items}</ul>'


def details_sections(report: Report) -> str:
    """Suggested renames and grouped findings, as tables."""
    out = []
    if report.suggestions:
        renames = [(f"<code>{esc(s.source_key)}</code>", f"<code>{esc(s.target_key)}</code>",
                 f"{s.confidence:.2f}", esc(s.rule), esc(s.transform or ""))
                for s in report.suggestions[:TABLE_ROWS]]
        out.append('<h2>Suggested renames</h2><p class="dim">Confident pairs; the findings are '
                   "unchanged by them.</p>"
                   + table(("source key", "target key", "confidence", "rule", "transform"), renames,
                           len(report.suggestions)))
    groups = finding_rows(report.findings)
    if groups:
        rows = [(f'<span class="m-{g.severity}">{esc(g.severity)}</span>', esc(g.kind),
                 f"<code>{esc(g.pattern)}</code>" + (f" ×{g.count}" if g.count > 1 else ""),
                 esc(g.source), esc(g.target), esc(g.note or ""))
                for g in groups[:TABLE_ROWS]]
        out.append("<h2>Findings</h2>" + table(
            ("severity", "kind", "keys", "source", "target", "note"), rows, len(groups)))
    return "\n".join(out)


def render_diff_html(tree: DiffTree) -> str:
    """The diff page of ``tree`` (a :func:`ckptdiff.graph.diff.diff_tree`)."""
    report = tree.report
    title = f"ckptdiff: {verdict(report)}: {report.source.path} → {report.target.path}"
    note = "" if tree.complete else (
        f'<p class="dim">Only keys with findings are in the tree; {report.matched} matched '
        "keys are not (the report alone does not list them).</p>")
    return page(title, report_header(report), rules_section(report) + note,
                details_sections(report), diff_payload(tree))


def render_manifest_html(manifest: Manifest) -> str:
    """The inspect page of ``manifest``: summary, searchable folded tree, shards."""
    graph = manifest_graph(manifest)
    header = (f"<h1>{esc(manifest.path)}</h1>"
              f'<div class="dim">{esc(summary_line(manifest))}</div>')
    after = ""
    if len(graph.shards) > 1:
        rows = [(f"<code>{esc(name)}</code>",
                 esc(stats_text(graph.stats_of(manifest.by_key[k] for k in keys), False)))
                for name, keys in graph.shards.items()]
        after = "<h2>Shards</h2>" + table(("file", "holds"), rows, len(rows))
    return page(f"ckptdiff: {manifest.path}", header, "", after, manifest_payload(graph))


class HtmlRenderer:
    """The diff page from a report alone (the tree then holds only keys with findings)."""

    name = "html"

    def render(self, report: Report, *, color: bool = False, width: int | None = None) -> str:
        """Render ``report``; ``color`` and ``width`` are ignored."""
        return render_diff_html(diff_tree(report))
