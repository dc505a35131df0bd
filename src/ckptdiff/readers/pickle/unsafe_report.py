"""``ckptdiff inspect --unsafe-report``: every global every pickle of a checkpoint names.

For security reviewers who use ckptdiff as a scanner: the report lists, per pickle, each global
it names, how many times, and its status, then a verdict. Nothing is unpickled or executed, and
the command exits 0 whatever it finds (``inspect`` without the option refuses an unsafe file
with exit 3). Statuses:

- ``allowed``: on ckptdiff's allow-list and on torch's ``weights_only`` allow-list;
- ``data``: read by ckptdiff as plain data (numpy values, Lightning hyper-parameters) but refused
  by ``torch.load(weights_only=True)``;
- ``unsupported``: a harmless torch class that ckptdiff cannot describe (nested tensors, DTensor);
- ``unsafe``: outside the allow-list; ``torch.load(weights_only=False)`` would import it and may
  call it. ckptdiff never resolves it.

The verdict is ``unsafe`` when any global is unsafe; else ``incomplete`` when a pickle could not
be scanned to its end, or part of the container not at all (a note starting ``not scanned:``
says which); else ``no-pickles`` when the checkpoint has no pickle (safetensors, TensorFlow,
Keras); else ``safe``. JSON form (``--format json``)::

    {"schema": "ckptdiff.unsafe-report/1", "path": "ckpt.pth", "format": "torch-zip",
     "container": "zip", "verdict": "unsafe", "unsafe_globals": ["os.system"],
     "pickles": [{"member": "archive/data.pkl", "bytes": 412, "opcodes": 97, "error": null,
                  "globals": [{"name": "os.system", "count": 1, "status": "unsafe"}]}],
     "notes": []}

``container`` says where pickles were looked for (``zip``, ``tar``, ``pickle`` for a file of
pickles in a row, ``torch-dcp``, ``directory``, ``other``); ``format`` is the reader that would
read the checkpoint, or null; ``error`` says why a pickle could not be scanned to its end (what was
found before that is listed).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from ckptdiff.errors import CkptdiffError
from ckptdiff.readers import find_reader, locate
from ckptdiff.readers.pickle.inventory import UNSAFE, UNSCANNED, PickleFindings, inventory
from ckptdiff.readers.safety import shown
from ckptdiff.sources.remote import RemotePath

SCHEMA = "ckptdiff.unsafe-report/1"


@dataclass(frozen=True)
class UnsafeReport:
    """What :func:`unsafe_report` found in one checkpoint."""

    path: str
    format: str | None
    container: str
    pickles: tuple[PickleFindings, ...]
    notes: tuple[str, ...]

    @property
    def unsafe_globals(self) -> list[str]:
        """Every global outside the allow-list, sorted."""
        return sorted({g.name for p in self.pickles for g in p.globals if g.status == UNSAFE})

    @property
    def verdict(self) -> str:
        """``unsafe``, ``incomplete``, ``no-pickles`` or ``safe`` (see the module docstring)."""
        if self.unsafe_globals:
            return "unsafe"
        if any(p.error for p in self.pickles) or any(n.startswith(UNSCANNED) for n in self.notes):
            return "incomplete"
        return "safe" if self.pickles else "no-pickles"

    def to_dict(self) -> dict[str, Any]:
        """The ``ckptdiff.unsafe-report/1`` JSON document."""
        return {
            "schema": SCHEMA, "path": self.path, "format": self.format,
            "container": self.container, "verdict": self.verdict,
            "unsafe_globals": self.unsafe_globals,
            "pickles": [{"member": p.member, "bytes": p.size, "opcodes": p.opcodes,
                         "error": p.error,
                         "globals": [{"name": g.name, "count": g.count, "status": g.status}
                                     for g in p.globals]} for p in self.pickles],
            "notes": list(self.notes),
        }

    def to_json(self) -> str:
        """The JSON document as text (UTF-8 safe: names from pickles are escaped)."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=True)


def unsafe_report(source: str | os.PathLike[str] | RemotePath) -> UnsafeReport:
    """Scan every pickle of the checkpoint at ``source``; raises only when it cannot be opened."""
    path = locate(source)
    try:
        fmt: str | None = find_reader(path).name
    except CkptdiffError:
        if not path.exists():  # a TensorFlow prefix need not exist, but a reader knows it
            raise
        fmt = None
    try:
        container, pickles, notes = inventory(path)
    except OSError as exc:
        raise CkptdiffError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return UnsafeReport(str(source), fmt, container, tuple(pickles), tuple(notes))


def render_unsafe_table(report: UnsafeReport) -> str:
    """The report for a terminal: one block per pickle, one line per global, then the verdict."""
    count = len(report.pickles)
    lines = [f"{report.path}: {report.format or 'unknown format'} ({report.container}), "
             f"{count} pickle{'' if count == 1 else 's'}"]
    for found in report.pickles:
        lines.append(f"  {found.member}  {found.size:,} bytes, {found.opcodes:,} opcodes")
        width = max((len(f"{g.count:,}") for g in found.globals), default=1)
        lines.extend(f"    {g.status:<11}  ×{g.count:>{width},}  {_ascii(g.name)}"
                     for g in found.globals)
        if found.error:
            lines.append(f"    (scan stopped: {_ascii(found.error)})")
    lines.extend(f"  note: {_ascii(note)}" for note in report.notes)
    unsafe = report.unsafe_globals
    if unsafe:
        verdict = (f"verdict: unsafe: {len(unsafe)} global{'' if len(unsafe) == 1 else 's'} "
                   f"outside ckptdiff's allow-list ({', '.join(map(_ascii, unsafe[:12]))}"
                   f"{' …' if len(unsafe) > 12 else ''}); nothing was executed")
    elif report.verdict == "incomplete":
        verdict = ("verdict: incomplete: no global outside the allow-list was found, but part of "
                   "the checkpoint could not be scanned (damaged?)")
    elif report.pickles:
        verdict = "verdict: safe: every global is on ckptdiff's allow-list"
    else:
        verdict = "verdict: no pickles: nothing in this checkpoint is unpickled"
    lines.append(verdict)
    return "\n".join(lines) + "\n"


def _ascii(text: str) -> str:
    return shown(text, 400)
