"""A forward-only byte window over a file, for parsers of little-endian binary headers.

A GGUF header is a long run of small fields (a tokenizer alone is hundreds of thousands of
length-prefixed strings), so one ``read`` call per field costs more than the parse itself. The
window reads in chunks that start at 4 KiB and double, so a header of a few kilobytes costs a few
kilobytes of a multi-gigabyte file (at most twice the header plus 4 KiB is read), and skipping
(string contents, numeric arrays) seeks rather than reads once the wanted bytes leave the window.
Every read past the end of the file is a one-line truncation error naming what was being read.
"""

from __future__ import annotations

import struct
from typing import IO

from ckptdiff.errors import CorruptFileError

FIRST_CHUNK = 4096
MAX_CHUNK = 4 * 1024 * 1024
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")


class Cursor:
    """Reads fields from ``file`` (``size`` bytes long) at a moving position."""

    def __init__(self, file: IO[bytes], size: int, label: str) -> None:
        self.file = file
        self.size = size
        self.label = label
        self._window = b""
        self._base = 0  # file offset of the window's first byte
        self._pos = 0  # position inside the window
        self._chunk = FIRST_CHUNK

    @property
    def offset(self) -> int:
        """The file offset of the next byte to read."""
        return self._base + self._pos

    @property
    def remaining(self) -> int:
        """Bytes between the position and the end of the file."""
        return self.size - self.offset

    def _fill(self, count: int, what: str) -> None:
        """Make ``count`` bytes from the position available in the window."""
        if self._pos + count <= len(self._window):
            return
        if count > self.remaining:
            raise CorruptFileError(
                f"{self.label}: file ends at byte {self.size:,} while reading {what} "
                f"({count:,} bytes from byte {self.offset:,}): truncated download?")
        keep = self._window[self._pos:]
        self.file.seek(self._base + len(self._window))
        wanted = max(count - len(keep), self._chunk)
        more = self.file.read(min(wanted, self.size - self._base - len(self._window)))
        self._chunk = min(self._chunk * 2, MAX_CHUNK)
        self._base += self._pos
        self._window = keep + more
        self._pos = 0
        if len(self._window) < count:  # the file shrank under us
            raise CorruptFileError(f"{self.label}: file ends while reading {what}: "
                                   "truncated download?")

    def take(self, count: int, what: str) -> bytes:
        """The next ``count`` bytes."""
        self._fill(count, what)
        data = self._window[self._pos:self._pos + count]
        self._pos += count
        return data

    def u32(self, what: str) -> int:
        """A little-endian unsigned 32-bit integer."""
        self._fill(4, what)
        (value,) = _U32.unpack_from(self._window, self._pos)
        self._pos += 4
        return int(value)

    def u64(self, what: str) -> int:
        """A little-endian unsigned 64-bit integer."""
        self._fill(8, what)
        (value,) = _U64.unpack_from(self._window, self._pos)
        self._pos += 8
        return int(value)

    def skip(self, count: int, what: str) -> None:
        """Move past ``count`` bytes, reading none of those that are not in the window yet."""
        if count > self.remaining:
            raise CorruptFileError(
                f"{self.label}: file ends at byte {self.size:,} while skipping {what} "
                f"({count:,} bytes from byte {self.offset:,}): truncated download?")
        if self._pos + count <= len(self._window):
            self._pos += count
            return
        self._base = self.offset + count
        self._window = b""
        self._pos = 0

    def skip_strings(self, count: int, what: str) -> None:
        """Move past ``count`` length-prefixed strings (u64 length, then the bytes)."""
        # Locals, not attributes, in the common case: a tokenizer is 10^5 strings.
        window, pos, limit = self._window, self._pos, len(self._window)
        done = 0
        while done < count:
            if pos + 8 <= limit:
                end = pos + 8 + _U64.unpack_from(window, pos)[0]
                if end <= limit:
                    pos = end
                    done += 1
                    continue
            self._pos = pos
            self.skip(self.u64(what), what)
            done += 1
            window, pos, limit = self._window, self._pos, len(self._window)
        self._pos = pos
