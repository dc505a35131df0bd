"""The key tree: splitting, index order, exact folding, hostile keys."""

from __future__ import annotations

import itertools

from ckptdiff.graph.fold import fold_tree, index_pattern
from ckptdiff.graph.tree import MAX_DEPTH, build_tree, is_index, split_key


def _expand(pattern: str) -> list[str]:
    """Every key a folded name like ``layers.{0..2,5}.w`` stands for."""
    pieces: list[list[str]] = []
    rest = pattern
    while "{" in rest:
        head, _, tail = rest.partition("{")
        body, _, rest = tail.partition("}")
        values: list[str] = []
        for part in body.split(","):
            a, _, b = part.partition("..")
            values.extend(str(i) for i in range(int(a), int(b or a) + 1))
        pieces.extend([[head], values])
    pieces.append([rest])
    return ["".join(p) for p in itertools.product(*pieces)]


def _keys(node: object, prefix: str = "") -> list[str]:
    """Keys of a folded tree, expanded back from folded names."""
    from ckptdiff.graph.tree import TreeNode

    assert isinstance(node, TreeNode)
    out = []
    for name in _expand(node.name) if node.name else [""]:
        here = prefix + node.separator + name if prefix or node.separator else name
        if node.item is not None:
            out.append(here)
        for child in node.children:
            out.extend(_keys(child, here))
    return out


def test_split_key_dots_slashes_and_empty_segments() -> None:
    assert split_key("model.layers.0.w") == [
        ("", "model", "model"), (".", "layers", "model.layers"),
        (".", "0", "model.layers.0"), (".", "w", "model.layers.0.w")]
    assert [s for _, s, _ in split_key("a/b/.ATTRIBUTES/VARIABLE_VALUE")] == [
        "a", "b", ".ATTRIBUTES", "VARIABLE_VALUE"]
    assert split_key(".hidden")[-1] == ("", ".hidden", ".hidden")
    assert split_key("")[-1][2] == ""


def test_split_key_depth_is_capped_and_the_last_prefix_is_the_key() -> None:
    key = ".".join(["x"] * 5000)
    parts = split_key(key)
    assert len(parts) == MAX_DEPTH
    assert parts[-1][2] == key


def test_is_index_refuses_leading_zeros() -> None:
    assert is_index("0") and is_index("31")
    assert not is_index("01") and not is_index("a1") and not is_index("")


def test_indices_go_back_to_numeric_order_named_siblings_stay() -> None:
    keys = ["h.10.w", "h.1.w", "h.norm", "h.2.w", "h.0.w"]
    tree = build_tree((k, k) for k in keys)
    assert [c.name for c in tree.children[0].children] == ["0", "1", "norm", "2", "10"]


def test_identical_layers_fold_and_a_different_one_stays_apart() -> None:
    entries = [(f"layers.{i}.{n}", (3 if (i, n) == (5, "w") else 2,))
               for i in range(8) for n in ("w", "b")]
    folded = fold_tree(build_tree(entries), lambda shape: shape)
    layers = folded.children[0]
    assert [(c.name, c.count) for c in layers.children] == [("{0..4,6,7}", 7), ("5", 1)]
    assert sorted(_keys(folded)) == sorted(k for k, _ in entries)


def test_folding_needs_same_relative_keys_not_just_same_sizes() -> None:
    entries = [("x.0.a", 1), ("x.1.b", 1), ("x.2.a", 1)]
    folded = fold_tree(build_tree(entries), lambda item: item)
    assert [c.name for c in folded.children[0].children] == ["{0,2}", "1"]
    assert sorted(_keys(folded)) == sorted(k for k, _ in entries)


def test_separators_are_part_of_the_structure() -> None:
    entries = [("a/0/k", 1), ("a/1/k", 1), ("a.2.k", 1)]
    folded = fold_tree(build_tree(entries), lambda item: item)
    names = [(c.separator, c.name) for c in folded.children[0].children]
    assert ("/", "{0,1}") in names and (".", "2") in names


def test_a_node_can_hold_a_tensor_and_children() -> None:
    tree = build_tree([("dense", 1), ("dense/kernel", 2)])
    dense = tree.children[0]
    assert dense.item == 1 and dense.children[0].item == 2
    assert sorted(tree.items()) == [1, 2]


def test_folded_items_cover_every_member() -> None:
    entries = [(f"l.{i}.w", i) for i in range(32)]
    folded = fold_tree(build_tree(entries), lambda item: "same")
    group = folded.children[0].children[0]
    assert group.count == 32 and group.name == "{0..31}"
    assert sorted(group.items()) == list(range(32))


def test_index_pattern_is_exact() -> None:
    assert index_pattern(["3", "0", "1", "2", "7", "9", "10"]) == "{0..3,7,9,10}"
    for indices in ([0, 1], [0, 2, 3, 4, 8], [5]):
        assert _expand("x" + index_pattern(str(i) for i in indices)) == [f"x{i}" for i in indices]


def test_layers_fold_whatever_order_their_tensors_are_listed_in() -> None:
    # Sharded checkpoints list a layer's tensors in shard order, not in the same order per layer.
    entries = [(f"layers.{i}.{n}", (2,)) for i in range(4)
               for n in (("w", "b") if i % 2 == 0 else ("b", "w"))]
    folded = fold_tree(build_tree(entries), lambda shape: shape)
    assert [(c.name, c.count) for c in folded.children[0].children] == [("{0..3}", 4)]
