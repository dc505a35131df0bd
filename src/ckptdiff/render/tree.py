"""``ckptdiff inspect --tree``: the module tree with counts and sizes, repeated blocks folded.

Chains of single children print as one line (``model.embed_tokens.weight``); ``depth`` counts
printed levels. Sizes of a folded group (``layers.{0..31}  ×32``) are per member, marked ``each``.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, TypeVar

from ckptdiff.graph.manifest import ManifestGraph, NodeStats, manifest_graph, tensor_nbytes
from ckptdiff.graph.tree import TreeNode
from ckptdiff.manifest import Manifest, TensorInfo
from ckptdiff.render.manifest_view import human_bytes, human_count, summary_line

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text
    from rich.tree import Tree

T = TypeVar("T")


def compact(node: TreeNode[T]) -> tuple[str, TreeNode[T]]:
    """The label of ``node`` joined with its only descendants, and the node the chain ends at."""
    label = node.name
    while node.item is None and node.count == 1 and len(node.children) == 1:
        node = node.children[0]
        label += node.separator + node.name
        if node.count > 1:
            break
    return label, node


def make_console(color: bool, width: int | None) -> tuple[Console, io.StringIO]:
    """A rich console writing into a buffer, as every terminal renderer of ckptdiff uses."""
    from rich.console import Console

    buffer = io.StringIO()
    # No markup: keys, globs and regexes are full of [brackets] that rich would eat.
    console = Console(file=buffer, force_terminal=color, no_color=not color, width=width or 120,
                      highlight=False, soft_wrap=False, markup=False)
    return console, buffer


def stats_text(stats: NodeStats, each: bool) -> str:
    """``9 tensors · 202.4K params · 790.6 KiB`` (dtypes listed when several)."""
    tensors = f"{stats.tensors} tensor{'s' if stats.tensors != 1 else ''}"
    if stats.shared:
        tensors += f" ({stats.shared} tied cop{'ies' if stats.shared != 1 else 'y'})"
    parts = [tensors, f"{human_count(stats.params)} params", human_bytes(stats.nbytes)]
    if len(stats.bytes_by_dtype) > 1:
        parts.append(", ".join(f"{dtype} {human_bytes(size)}" for dtype, size
                               in sorted(stats.bytes_by_dtype.items(), key=lambda i: -i[1])))
    return " · ".join(parts) + (" each" if each else "")


def tensor_text(info: TensorInfo, shared: bool, tied: tuple[str, ...] | None = None) -> str:
    """``[4096, 4096] bfloat16 · 32.0 MiB`` plus kind, device, tie and slot facts.

    ``tied`` overrides ``info.aliases`` (callers pass the aliases that are keys of the manifest).
    """
    size = tensor_nbytes(info)
    parts = [f"[{', '.join(str(d) for d in info.shape)}] {info.dtype}",
             "?" if size is None else human_bytes(size)]
    if info.kind != "parameter" and not (info.kind == "optimizer_slot" and info.slot_of):
        parts.append(info.kind)
    if info.device not in (None, "cpu"):
        parts.append(str(info.device))
    tied = info.aliases if tied is None else tied
    if tied:
        parts.append(f"tied: {', '.join(tied)}" + (" (shared storage)" if shared else ""))
    if info.slot_of:
        parts.append(f"slot of {info.slot_of}")
    return " · ".join(parts)


def describe_tensor(graph: ManifestGraph, info: TensorInfo) -> str:
    """:func:`tensor_text` of a tensor of ``graph`` (ties to keys of its manifest only)."""
    return tensor_text(info, info.key in graph.copies, graph.tied(info))


def _label(graph: ManifestGraph, label: str, node: TreeNode[TensorInfo]) -> Text:
    from rich.text import Text

    text = Text(label, style="bold" if node.children else "")
    if node.count > 1:
        text.append(f"  ×{node.count}", style="magenta")
    if node.item is not None:
        each = " each" if node.count > 1 else ""
        text.append(f"  {describe_tensor(graph, node.item)}{each}",
                    style="cyan" if graph.tied(node.item) else "dim")
    if node.children:
        text.append("  " + stats_text(graph.stats(node.group[0] if node.group else node),
                                      node.count > 1), style="green")
    return text


def _grow(tree: Tree, graph: ManifestGraph, node: TreeNode[TensorInfo], depth: int | None) -> None:
    for child in node.children:
        label, end = compact(child)
        branch = tree.add(_label(graph, label, end))
        if end.children and (depth is None or depth > 1):
            _grow(branch, graph, end, None if depth is None else depth - 1)


def render_manifest_tree(manifest: Manifest, *, depth: int | None = None,
                         key_glob: str | None = None, color: bool = False,
                         width: int | None = None) -> str:
    """The inspect tree of ``manifest``: summary line, folded module tree, shards."""
    from rich.text import Text
    from rich.tree import Tree

    graph = manifest_graph(manifest, key_glob)
    console, buffer = make_console(color, width)
    console.print(Text(manifest.path, style="bold"), Text(summary_line(manifest), style="dim"))
    if key_glob is not None:
        console.print(f"{graph.selected} of {len(manifest)} tensors match {key_glob!r}",
                      style="dim")
    if not graph.selected:
        return buffer.getvalue()
    root = graph.folded()
    tree = Tree(Text.assemble((manifest.format, "bold"), "  ",
                              (stats_text(graph.stats(root), False), "green")))
    _grow(tree, graph, root, depth)
    console.print(tree)
    if len(graph.shards) > 1:
        console.print("shards:", style="bold")
        for name, keys in graph.shards.items():
            stats = graph.stats_of(manifest.by_key[k] for k in keys)
            console.print(f"  {name}  {stats_text(stats, False)}")
    return buffer.getvalue()
