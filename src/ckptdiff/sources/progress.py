"""A progress bar on stderr for reads that take a while (remote files, many shards).

Readers and the remote layer call the cheap hooks (:func:`note_file`, :func:`note_bytes`,
:func:`note_step`); they do nothing unless a command runs inside :func:`reporting`. The bar
appears only once a read has taken longer than :data:`DELAY_SECONDS`, only on a terminal, and
disappears when the read ends; rich is imported only then, so scripted (JSON) runs never load it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

DELAY_SECONDS = 1.0


class _Reporter:
    """What one reporting block has seen, and the rich display once it is shown."""

    def __init__(self, label: str, delay: float) -> None:
        self.label = label
        self.started = time.monotonic()
        self.delay = delay
        self.files = 0
        self.fetched = 0
        self.current = ""
        self.done = 0
        self.total: int | None = None
        self._display: Any = None
        self._task: Any = None

    def refresh(self) -> None:
        """Show the bar once the delay has passed; update it when shown."""
        if self._display is None:
            if time.monotonic() - self.started < self.delay:
                return
            self._start()
        parts = [self.label, self.current]
        if self.files > 1:
            parts.append(f"{self.files} files")
        if self.fetched:
            parts.append(f"{_size(self.fetched)} fetched")
        self._display.update(self._task, description=" · ".join(p for p in parts if p),
                             completed=self.done, total=self.total)

    def _start(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        self._display = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(),
                                 console=Console(stderr=True), transient=True)
        self._task = self._display.add_task(self.label, total=self.total)
        self._display.start()

    def close(self) -> None:
        """Take the bar off the terminal."""
        if self._display is not None:
            self._display.stop()


_active: _Reporter | None = None


@contextmanager
def reporting(label: str, enabled: bool, delay: float = DELAY_SECONDS) -> Iterator[None]:
    """Show progress of what runs inside, when ``enabled`` (e.g. stderr is a terminal)."""
    global _active
    if not enabled or _active is not None:
        yield
        return
    _active = _Reporter(label, delay)
    try:
        yield
    finally:
        reporter, _active = _active, None
        reporter.close()


def stderr_is_terminal() -> bool:
    """True when stderr is an interactive terminal (where a progress bar belongs)."""
    return sys.stderr.isatty()


def note_file(name: str) -> None:
    """A file is being opened for reading."""
    if _active is not None:
        _active.files += 1
        _active.current = name
        _active.refresh()


def note_bytes(count: int) -> None:
    """``count`` bytes came over the network."""
    if _active is not None:
        _active.fetched += count
        _active.refresh()


def note_step(done: int, total: int, what: str = "") -> None:
    """``done`` of ``total`` parts (shards, storage files) are read; ``what`` is the next one."""
    if _active is not None:
        _active.done, _active.total = done, total
        if what:
            _active.current = what
        _active.refresh()


def read_summaries(result: object, seconds: float) -> list[str]:
    """One line per checkpoint manifest in ``result`` (a manifest or a tuple of them): what was
    read and what it cost (``--verbose``). Live models read no file and get no line."""
    items = result if isinstance(result, tuple) else (result,)
    lines = []
    for item in items:
        metadata = getattr(item, "metadata", None)
        if (not isinstance(metadata, dict) or not isinstance(metadata.get("bytes_read"), int)
                or metadata.get("live_model")):
            continue
        count = len(getattr(item, "tensors", ()))
        lines.append(f"read {getattr(item, 'path', '?')} ({getattr(item, 'format', '?')}): "
                     f"{count:,} tensors, {metadata['bytes_read']:,} bytes read "
                     f"({_size(metadata['bytes_read'])})")
    if lines:
        lines.append(f"reading took {seconds:.2f} s")
    return lines


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KB", "MB"):
        if value < 1000:
            return f"{value:.0f} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"
