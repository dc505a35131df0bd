"""The JSON payload the HTML page draws from: the folded tree plus a flat key list for search.

The page builds DOM rows only for what is open, so a 100k-key report costs one ``JSON.parse``
rather than 100k elements. Node objects use one-letter fields to keep the payload small:
``l`` label, ``x`` how many folded members, ``m`` mark (worst severity, or ``ok``), ``s`` status
(the colour of ``d``), ``d`` detail text, ``o`` open at load, ``c`` children.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from ckptdiff.graph.diff import DiffLeaf, DiffTree
from ckptdiff.graph.manifest import ManifestGraph
from ckptdiff.graph.tree import TreeNode, quiet_gc
from ckptdiff.manifest import TensorInfo
from ckptdiff.render.tree import compact, describe_tensor, stats_text
from ckptdiff.render.tree_diff import leaf_text, node_view

T = TypeVar("T")
NodeFields = Callable[[TreeNode[T]], dict[str, Any]]


@quiet_gc()
def tree_payload(root: TreeNode[T], fields: NodeFields[T], label: str) -> dict[str, Any]:
    """The node objects of ``root``'s tree, single-child chains joined into one label."""
    node = fields(root)
    node["l"] = label
    if root.children:
        node["c"] = [_node(child, fields) for child in root.children]
    return node


def _node(child: TreeNode[T], fields: NodeFields[T]) -> dict[str, Any]:
    label, end = compact(child)
    node = fields(end)
    node["l"] = label
    if end.count > 1:
        node["x"] = end.count
    if end.children:
        node["c"] = [_node(grandchild, fields) for grandchild in end.children]
    return node


def diff_payload(tree: DiffTree) -> dict[str, Any]:
    """Tree and searchable keys of a diff; every key carries its status and what happened."""

    def fields(node: TreeNode[DiffLeaf]) -> dict[str, Any]:
        view = node_view(tree, node)
        out: dict[str, Any] = {"m": view.worst or "ok", "s": view.status, "d": view.detail}
        if not view.collapsed:
            out["o"] = 1
        return out

    title = "union of both key sets" if tree.complete else "keys with findings"
    root = tree_payload(tree.root, fields, title)
    root["o"] = 0 if tree.is_ok(tree.root) else 1
    keys = _key_rows((leaf.key, "info" if leaf.severity == "info" else leaf.status,
                      leaf.severity or "ok", leaf_text(leaf, False))
                     for leaf in tree.root.items())
    return {"mode": "diff", "tree": root, **keys}


def manifest_payload(graph: ManifestGraph) -> dict[str, Any]:
    """Tree and searchable keys of one manifest, with counts and sizes per node."""

    def fields(node: TreeNode[TensorInfo]) -> dict[str, Any]:
        parts = []
        if node.item is not None:
            parts.append(describe_tensor(graph, node.item)
                         + (" each" if node.count > 1 else ""))
        if node.children:
            parts.append(stats_text(graph.stats(node.group[0] if node.group else node),
                                    node.count > 1))
        return {"m": "", "s": "tied" if node.item and graph.tied(node.item) else "size",
                "d": "  ·  ".join(parts), "o": 1}

    root = tree_payload(graph.folded(), fields, graph.manifest.format)
    keys = _key_rows((t.key, "tied" if graph.tied(t) else "size", "",
                      describe_tensor(graph, t)) for t in graph.tree.items())
    return {"mode": "manifest", "tree": root, **keys}


@quiet_gc()
def _key_rows(rows: Iterable[tuple[str, str, str, str]]) -> dict[str, Any]:
    """``keys``: ``[key, status index, detail index]``; ``statuses`` holds ``[status, mark]``
    pairs and ``details`` the texts, each said once however many keys share it."""
    statuses: dict[tuple[str, str], int] = {}
    details: dict[str, int] = {}
    keys = []
    for key, status, mark, detail in rows:
        keys.append([key, statuses.setdefault((status, mark), len(statuses)),
                     details.setdefault(detail, len(details))])
    return {"keys": keys, "statuses": [list(pair) for pair in statuses],
            "details": list(details)}


def script_json(payload: dict[str, Any]) -> str:
    """``payload`` as JSON safe inside ``<script>``: no ``</script>`` or ``<!--`` can appear."""
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return (text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))
