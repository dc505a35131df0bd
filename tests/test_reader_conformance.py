"""One conformance suite every reader passes, over the committed fixtures in testdata/readers/.

Each format family keeps ``testdata/readers/<family>/cases.json``: a list of
``{"path": ..., "format": ..., "truncate": ..., "key": ..., "reader": ...}`` objects (paths
relative to that folder; ``truncate`` names the file whose truncation must be refused, or null;
``reader`` is the reader's name where it differs from the manifest's ``format``). Next to each case
is ``<path>.golden.json``, the manifest it must read to (regenerate with
``python tests/regen_golden.py`` after a deliberate change, and review the diff).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import ckptdiff.readers as registry
from ckptdiff.errors import CkptdiffError
from ckptdiff.manifest import Manifest

TESTDATA = Path(__file__).resolve().parent.parent / "testdata" / "readers"


def _cases() -> list[dict[str, str | None]]:
    cases: list[dict[str, str | None]] = []
    for cases_file in sorted(TESTDATA.glob("*/cases.json")):
        for case in json.loads(cases_file.read_text()):
            case["dir"] = str(cases_file.parent)
            cases.append(case)
    return cases


CASES = _cases()
IDS = [f"{Path(str(c['dir'])).name}/{c['path']}" for c in CASES]


def _path(case: dict[str, str | None]) -> Path:
    return Path(str(case["dir"])) / str(case["path"])


def _golden(case: dict[str, str | None]) -> Path:
    return Path(str(case["dir"])) / f"{case['path']}.golden.json"


def _normalized(manifest: Manifest, base: Path) -> dict[str, object]:
    data = manifest.to_dict()
    # Paths depend on where the repository lives; golden files keep them relative.
    data["path"] = str(Path(str(data["path"])).relative_to(base)) if Path(
        str(data["path"])).is_absolute() else data["path"]
    return data


def test_there_are_cases() -> None:
    assert len(CASES) >= 1


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_reads_to_golden_manifest(case: dict[str, str | None], manifest_schema: object) -> None:
    import jsonschema

    path = _path(case)
    manifest = registry.read(path, case.get("key"))
    assert manifest.format == case["format"]
    document = json.loads(manifest.to_json())
    jsonschema.validate(document, manifest_schema)
    assert isinstance(manifest.metadata.get("bytes_read"), int)
    assert Manifest.from_json(manifest.to_json()) == manifest
    golden = json.loads(_golden(case).read_text())
    assert _normalized(manifest, Path(str(case["dir"]))) == golden


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_truncation_is_a_clear_error(case: dict[str, str | None], tmp_path: Path) -> None:
    if not case.get("truncate"):
        pytest.skip("this case has no single file whose truncation matters")
    src_dir = Path(str(case["dir"]))
    work = tmp_path / "case"
    shutil.copytree(src_dir, work, symlinks=True)
    victim = work / str(case["truncate"])
    data = victim.read_bytes()
    offsets = sorted({0, 1, 7, 8, 9, len(data) // 3, len(data) // 2, len(data) - 1})
    for cut in offsets:
        if cut >= len(data):
            continue
        victim.write_bytes(data[:cut])
        with pytest.raises(CkptdiffError):
            registry.read(work / str(case["path"]), case.get("key"))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_no_other_reader_claims_the_file(case: dict[str, str | None]) -> None:
    path = _path(case)
    head = path.read_bytes()[:4096] if path.is_file() else b""
    claimed = [e.reader.name for e in registry.registered() if e.reader.sniff(head, path)]
    assert claimed == [case.get("reader") or case["format"]], claimed


def test_reading_every_case_imports_no_framework() -> None:
    cases = json.dumps([[str(_path(c)), c.get("key")] for c in CASES])
    script = (
        "import sys, json\n"
        "import ckptdiff.readers as r\n"
        f"for c in json.loads({json.dumps(cases)}):\n"
        "    r.read(c[0], c[1])\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'tensorflow', 'keras', 'jax', 'transformers', 'safetensors'))\n"
        "print(json.dumps(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
