"""Rewrite every ``*.golden.json`` under testdata/readers from the current readers.

Run after a deliberate change to a reader, then review ``git diff testdata``.
"""

from __future__ import annotations

import json
from pathlib import Path

import ckptdiff.readers as registry

TESTDATA = Path(__file__).resolve().parent.parent / "testdata" / "readers"


def main() -> None:
    """Regenerate all golden manifests."""
    for cases_file in sorted(TESTDATA.glob("*/cases.json")):
        base = cases_file.parent
        for case in json.loads(cases_file.read_text()):
            manifest = registry.read(base / case["path"], case.get("key"))
            data = manifest.to_dict()
            if Path(data["path"]).is_absolute():
                data["path"] = str(Path(data["path"]).relative_to(base))
            golden = base / f"{case['path']}.golden.json"
            golden.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
            print(f"wrote {golden.relative_to(TESTDATA)}")


if __name__ == "__main__":
    main()
