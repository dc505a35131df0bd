"""Shared pytest fixtures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

SCHEMAS = Path(__file__).resolve().parent.parent / "src" / "ckptdiff" / "schemas"


@pytest.fixture(scope="session")
def manifest_schema() -> dict[str, Any]:
    """The shipped JSON Schema of manifests (a copy of shared/schemas)."""
    return json.loads((SCHEMAS / "manifest.schema.json").read_text())


@pytest.fixture(scope="session")
def report_schema() -> dict[str, Any]:
    """The shipped JSON Schema of diff reports (a copy of shared/schemas)."""
    return json.loads((SCHEMAS / "report.schema.json").read_text())
