"""ZIP confusion is refused by every reader of torch's zip archives, not only ``torch.save``'s.

Python's ``zipfile`` follows the central directory that ends at the end record; torch's miniz
(``torch.load``, ``torch.jit.load``, ``torch.export.load``) the offset the end record states.
An archive appended to another makes the two read different members, so each torch archive
reader refuses it, and the unsafe report says so.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import ckptdiff
from ckptdiff.errors import CorruptFileError
from ckptdiff.readers.pickle.unsafe_report import unsafe_report

FIXTURES = Path(__file__).resolve().parent.parent / "testdata" / "readers"
ARCHIVES = sorted([*(FIXTURES / "torch").glob("*.pth"), *(FIXTURES / "torchscript").glob("*.pt"),
                   *(FIXTURES / "torch_export").glob("*.pt2")])


def appended(original: Path, tmp_path: Path) -> Path:
    """``original`` with a copy of itself appended: zipfile reads the second archive."""
    data = original.read_bytes()
    target = tmp_path / original.name
    target.write_bytes(data + data)
    return target


@pytest.mark.parametrize("original", ARCHIVES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_an_archive_appended_to_another_is_refused(original: Path, tmp_path: Path) -> None:
    ckptdiff.read(original)  # the fixture itself reads
    with pytest.raises(CorruptFileError, match="central directory is at byte"):
        ckptdiff.read(appended(original, tmp_path))


def test_the_unsafe_report_notes_the_confusion(tmp_path: Path) -> None:
    original = next(p for p in ARCHIVES if p.suffix == ".pth")
    report = unsafe_report(appended(original, tmp_path))
    assert any("central directory is at byte" in note for note in report.notes)


def test_there_are_fixtures_of_each_archive_kind() -> None:
    assert {p.suffix for p in ARCHIVES} == {".pth", ".pt", ".pt2"}
