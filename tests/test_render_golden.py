"""Golden outputs of the markdown, github and junit renderers on one fixed report.

Regenerate after an intended change with ``CKPTDIFF_REGEN_GOLDEN=1 pytest
tests/test_render_golden.py``, then read the diff of tests/golden/ before committing it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tests.golden.fixed_report import fixed_report

from ckptdiff.render import get_renderer

GOLDEN = Path(__file__).parent / "golden"
FILES = {"markdown": "report.md", "github": "report.github.txt", "junit": "report.junit.xml"}


@pytest.mark.parametrize("format_name", sorted(FILES))
def test_renderer_matches_golden(format_name: str) -> None:
    rendered = get_renderer(format_name).render(fixed_report(), color=False, width=100)
    path = GOLDEN / FILES[format_name]
    if os.environ.get("CKPTDIFF_REGEN_GOLDEN"):
        path.write_text(rendered, encoding="utf-8")
    assert path.is_file(), f"{path} is missing: run with CKPTDIFF_REGEN_GOLDEN=1"
    assert rendered == path.read_text(encoding="utf-8")


@pytest.mark.parametrize("format_name", sorted(FILES))
def test_renderers_ignore_color_and_width(format_name: str) -> None:
    renderer = get_renderer(format_name)
    report = fixed_report()
    assert renderer.render(report, color=True, width=40) == renderer.render(report)
