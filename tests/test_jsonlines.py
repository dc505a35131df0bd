"""Indented JSON with long arrays one element per line: the same document, readable diffs."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from ckptdiff import jsonlines
from ckptdiff.manifest import Manifest, TensorInfo

SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(), inner, max_size=3), max_leaves=10)


@given(st.dictionaries(st.text(), VALUES, max_size=6), st.lists(VALUES, max_size=5))
def test_it_parses_to_the_same_document(document: dict[str, object], rows: list[object]) -> None:
    document = {**document, "rows": rows}
    text = jsonlines.dumps(document, ("rows",))
    assert json.loads(text) == document
    assert json.loads(jsonlines.dumps(document, ("rows",), indent=None)) == document


def test_each_row_is_one_line_and_the_rest_is_indented() -> None:
    document = {"schema": "x", "rows": [{"key": "a", "shape": [1, 2]}, {"key": "é\n"}],
                "meta": {"k": [1]}, "empty": []}
    lines = jsonlines.dumps(document, ("rows", "empty")).splitlines()
    assert lines == ['{', '  "schema": "x",', '  "rows": [',
                     '    {"key": "a", "shape": [1, 2]},', '    {"key": "é\\n"}', '  ],',
                     '  "meta": {', '    "k": [', '      1', '    ]', '  },', '  "empty": []',
                     '}']


def test_a_manifest_snapshot_changes_one_line_per_changed_tensor() -> None:
    tensors = [TensorInfo(f"layer.{i}.weight", (4, 4), "float32") for i in range(5)]
    before = Manifest("a.pth", "torch_zip", tuple(tensors)).to_json().splitlines()
    tensors[2] = TensorInfo("layer.2.weight", (4, 8), "float32")
    after = Manifest("a.pth", "torch_zip", tuple(tensors)).to_json().splitlines()
    changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert len(changed) == 1 and '"layer.2.weight"' in changed[0][1]


def test_pieces_and_pre_encoded_rows_give_the_same_text() -> None:
    rows = [{"key": f"k{i}", "shape": [i]} for i in range(jsonlines.ROWS_PER_CHUNK * 2 + 3)]
    document = {"schema": "x", "rows": rows, "empty": [], "meta": {"a": 1}}
    whole = jsonlines.dumps(document, ("rows", "empty"))
    assert json.loads(whole) == document
    assert whole.splitlines()[3:-7] == [f"    {jsonlines.encode_row(r)}," for r in rows[:-1]]
    pieces = list(jsonlines.chunks(document, ("rows", "empty")))
    assert "".join(pieces) == whole and len(pieces) > 3
    encoded = {"rows": [jsonlines.encode_row(r) for r in rows]}
    assert jsonlines.dumps({**document, "rows": []}, ("rows", "empty"), 2, encoded) == whole
    assert jsonlines.dumps({}, ()) == "{}" == "".join(jsonlines.chunks({}, ()))
