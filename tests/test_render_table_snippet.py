"""The paste-ready code in the table report survives a narrow terminal."""

from __future__ import annotations

import ast

from tests.helpers import manifest, t

from ckptdiff.diffing.match import diff_manifests
from ckptdiff.render.table import TableRenderer


def test_code_snippet_is_never_wrapped() -> None:
    keys = [f"encoder.layer.{i}.attention.output.dense.{w}" for i in range(3)
            for w in ("weight", "bias")]
    source = manifest(*(t("module._orig_mod." + k, 4) for k in keys))
    target = manifest(*(t(k, 4) for k in keys))
    text = TableRenderer().render(diff_manifests(source, target), width=40)
    code = text[text.index("    import re"):].split("\n\n\n", 1)
    snippet = "\n".join(line[4:] for line in "\n\n\n".join(code).splitlines()
                        if line.startswith("    ") or not line.strip())
    snippet = snippet[: snippet.index("Left unpaired")] if "Left unpaired" in snippet else snippet
    ast.parse(snippet)
