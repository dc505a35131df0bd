"""``ckptdiff inspect`` output: a summary line and tensors folded into readable groups."""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Hashable

from ckptdiff.dtypes import nbytes
from ckptdiff.manifest import Manifest, TensorInfo
from ckptdiff.render.grouping import fold


def human_bytes(count: int) -> str:
    """``1.2 GiB`` style sizes."""
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def human_count(count: int) -> str:
    """``110.1M`` style parameter counts."""
    for limit, suffix in ((10**12, "T"), (10**9, "B"), (10**6, "M"), (10**3, "K")):
        if count >= limit:
            return f"{count / limit:.1f}{suffix}"
    return str(count)


def summary_line(manifest: Manifest) -> str:
    """Format, tensor and parameter counts, bytes, dtypes, devices and container in one line."""
    weights = [t for t in manifest.tensors if t.kind in ("parameter", "buffer")]
    params = sum(t.numel for t in weights if not _is_alias_copy(t, manifest))
    total = sum(_size(t) for t in manifest.tensors if not _is_alias_copy(t, manifest))
    dtypes = Counter(t.dtype for t in manifest.tensors)
    devices = sorted({t.device for t in manifest.tensors if t.device})
    parts = [
        manifest.format,
        f"{len(manifest.tensors)} tensors",
        f"{human_count(params)} params",
        human_bytes(total),
        ", ".join(f"{d} ×{n}" for d, n in dtypes.most_common()),
    ]
    if devices:
        parts.append("on " + ", ".join(devices))
    if manifest.container_key:
        parts.append(f"container '{manifest.container_key}'")
    return " · ".join(p for p in parts if p)


def _size(info: TensorInfo) -> int:
    """Stored bytes, or what the dtype implies where the format does not say."""
    if info.nbytes is not None:
        return info.nbytes
    return nbytes(info.dtype, info.shape) or 0


def _is_alias_copy(info: TensorInfo, manifest: Manifest) -> bool:
    """True for the second and later keys of one tied tensor (counted once, under its first key)."""
    for alias in info.aliases:
        other = manifest.by_key.get(alias)
        if (other is not None and alias < info.key and other.shape == info.shape
                and other.storage_offset == info.storage_offset):
            return True
    return False


def render_manifest_table(manifest: Manifest, *, color: bool = False,
                          width: int | None = None) -> str:
    """The inspect table: keys folded by identical shape, dtype, kind and device."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=color, no_color=not color, width=width or 120,
                      highlight=False, soft_wrap=False)
    console.print(Text(manifest.path, style="bold"), Text(summary_line(manifest), style="dim"))
    table = Table(show_edge=False, pad_edge=False, header_style="bold")
    for column in ("key", "shape", "dtype", "kind", "device", "size"):
        table.add_column(column, overflow="fold", justify="right" if column == "size" else "left")
    groups: dict[Hashable, list[TensorInfo]] = {}
    for info in manifest.tensors:
        groups.setdefault((info.shape, info.dtype, info.kind, info.device), []).append(info)
    position = {info.key: i for i, info in enumerate(manifest.tensors)}
    rows = []
    for members in groups.values():
        for pattern, indices in fold([m.key for m in members]):
            first = members[indices[0]]
            key = Text(pattern)
            if len(indices) > 1:
                key.append(f"  ×{len(indices)}", style="dim")
            aliases = ", ".join(first.aliases)
            if aliases and len(indices) == 1:
                key.append(f"  (tied: {aliases})", style="cyan")
            size = human_bytes(first.nbytes) if first.nbytes is not None else "?"
            rows.append((position[first.key], key, first, size))
    for _, key, first, size in sorted(rows, key=lambda r: r[0]):
        table.add_row(key, str(list(first.shape)), first.dtype, first.kind, first.device or "—",
                      size)
    console.print(table)
    return buffer.getvalue()
