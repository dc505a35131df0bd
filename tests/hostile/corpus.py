"""Writes the whole hostile pickle corpus to a folder, in every container form, with a canary.

Shared by the tests, the audit-hook child process and ``bench/bench_hostile.py``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tests.hostile.containers import FORMS
from tests.hostile.pickles import Hostile, corpus

CANARY_TEXT = "intact\n"


@dataclass(frozen=True)
class CorpusFile:
    """One file (or DCP folder) of the corpus and the unsafe globals it must be refused for."""

    path: Path
    form: str
    hostile: Hostile


@dataclass(frozen=True)
class Corpus:
    """The written corpus: its files and the canary every payload aims at."""

    folder: Path
    canary: Path
    files: tuple[CorpusFile, ...]
    pickles: tuple[Hostile, ...]

    def canary_state(self) -> tuple[str, int, list[str]]:
        """The canary's text, its modification time, and what else is in its folder."""
        stat = self.canary.stat()
        return (self.canary.read_text(), stat.st_mtime_ns,
                sorted(p.name for p in self.canary.parent.iterdir()))

    def manifest(self) -> list[dict[str, object]]:
        """JSON-ready list of ``{"path", "form", "unsafe"}`` (for a child process)."""
        return [{"path": str(f.path), "form": f.form, "unsafe": sorted(f.hostile.unsafe)}
                for f in self.files]


def write_corpus(folder: Path, forms: tuple[str, ...] = tuple(FORMS)) -> Corpus:
    """Every hostile pickle in every form in ``forms``, under ``folder``; the canary beside."""
    folder.mkdir(parents=True, exist_ok=True)
    canary_dir = folder / "canary"
    canary_dir.mkdir(exist_ok=True)
    canary = canary_dir / "canary.txt"
    canary.write_text(CANARY_TEXT)
    pickles = tuple(corpus(str(canary)))
    files = []
    for form in forms:
        target = folder / form
        target.mkdir(exist_ok=True)
        files.extend(CorpusFile(FORMS[form](item, target / item.name), form, item)
                     for item in pickles)
    written = Corpus(folder, canary, tuple(files), pickles)
    (folder / "corpus.json").write_text(json.dumps(written.manifest()))
    return written
