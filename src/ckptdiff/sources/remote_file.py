"""A remote file read by byte ranges: fixed blocks fetched once, shared by every open of the file.

A checkpoint's header is a few KB of a file of many GB, and a sniffer, then a reader, look at the
same few blocks: each block (:data:`BLOCK_SIZE`) is fetched at most once per :class:`BlockStore`,
consecutive missing blocks in one ranged request. ``fetched`` counts the bytes that came over the
network, which is what a remote read reports as ``bytes_read``.
"""

from __future__ import annotations

import io
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

BLOCK_SIZE = 64 * 1024
# Blocks kept per file: a data.pkl or model_config of a few hundred MB is read once anyway.
MAX_CACHED_BYTES = 256 * 1024 * 1024

FetchRange = Callable[[int, int], bytes]


class RemoteReadError(OSError):
    """A ranged read failed (network, permissions, a file that changed under us)."""


class BlockStore:
    """The fetched blocks of one remote file of ``size`` bytes; ``fetch(start, end)`` gets bytes."""

    def __init__(self, fetch: FetchRange, size: int, label: str,
                 on_fetch: Callable[[int], None] | None = None) -> None:
        self._fetch = fetch
        self.size = size
        self.label = label
        self._on_fetch = on_fetch
        self._blocks: OrderedDict[int, bytes] = OrderedDict()
        self.fetched = 0

    def read(self, start: int, count: int) -> bytes:
        """Up to ``count`` bytes from ``start`` (fewer only at the end of the file)."""
        end = min(self.size, start + count)
        if start >= end:
            return b""
        first, last = start // BLOCK_SIZE, (end - 1) // BLOCK_SIZE
        self._fill(first, last)
        data = b"".join(self._blocks[number] for number in range(first, last + 1))
        for number in range(first, last + 1):
            self._blocks.move_to_end(number)
        offset = start - first * BLOCK_SIZE
        return data[offset:offset + end - start]

    def _fill(self, first: int, last: int) -> None:
        number = first
        while number <= last:
            if number in self._blocks:
                number += 1
                continue
            run_end = number
            while run_end + 1 <= last and run_end + 1 not in self._blocks:
                run_end += 1
            self._fetch_run(number, run_end)
            number = run_end + 1
        while len(self._blocks) * BLOCK_SIZE > MAX_CACHED_BYTES:
            oldest = next(iter(self._blocks))
            if first <= oldest <= last:
                break  # never evict what the current read needs
            del self._blocks[oldest]

    def _fetch_run(self, first: int, last: int) -> None:
        begin, stop = first * BLOCK_SIZE, min(self.size, (last + 1) * BLOCK_SIZE)
        try:
            data = self._fetch(begin, stop)
        except OSError as exc:
            raise RemoteReadError(f"{self.label}: cannot read bytes {begin:,}-{stop:,}: "
                                  f"{exc.strerror or exc}") from None
        except Exception as exc:  # botocore, aiohttp, … raise their own types
            raise RemoteReadError(f"{self.label}: cannot read bytes {begin:,}-{stop:,}: "
                                  f"{type(exc).__name__}: {exc}") from None
        if len(data) != stop - begin:
            raise RemoteReadError(f"{self.label}: asked for bytes {begin:,}-{stop:,}, got "
                                  f"{len(data):,} bytes: did the file change while reading?")
        self.fetched += len(data)
        if self._on_fetch is not None:
            self._on_fetch(len(data))
        for number in range(first, last + 1):
            offset = (number - first) * BLOCK_SIZE
            self._blocks[number] = data[offset:offset + BLOCK_SIZE]


class RemoteFile(io.RawIOBase):
    """A seekable, read-only binary file over a :class:`BlockStore` (h5py and zipfile take it)."""

    def __init__(self, store: BlockStore) -> None:
        super().__init__()
        self._store = store
        self.name = store.label
        self.size = store.size
        self._position = 0

    @property
    def fetched(self) -> int:
        """Bytes fetched over the network for this file so far (by every open of it)."""
        return self._store.fetched

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self.size}[whence]
        if base + offset < 0:
            raise ValueError(f"negative seek position {base + offset}")
        self._position = base + offset
        return self._position

    def tell(self) -> int:
        return self._position

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self._store.read(self._position, len(view))
        view[:len(data)] = data
        self._position += len(data)
        return len(data)

    def read(self, size: int | None = -1) -> bytes:
        count = self.size - self._position if size is None or size < 0 else size
        data = self._store.read(self._position, count)
        self._position += len(data)
        return data
