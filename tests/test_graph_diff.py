"""The diff as a union tree: statuses per key, folding of healthy layers, report-only trees."""

from __future__ import annotations

from tests.helpers import manifest, t

from ckptdiff.api import diff
from ckptdiff.diffing.match import diff_manifests
from ckptdiff.graph.diff import DiffLeaf, DiffTree, diff_leaves, diff_tree
from ckptdiff.graph.tree import TreeNode
from ckptdiff.manifest import TensorInfo


def layered(n: int, broken: int | None = None, prefix: str = "") -> list[TensorInfo]:
    return [t(f"{prefix}layers.{i}.{name}", 8 if (i, name) == (broken, "w") else 4, 4)
            for i in range(n) for name in ("w", "b")]


def statuses(tree: DiffTree) -> dict[str, str]:
    return {leaf.key: leaf.status for leaf in tree.root.items()}


def test_every_status_of_the_union() -> None:
    source = manifest(t("a", 2), t("b", 3), t("c", 2, dtype="float16"), t("gone", 1),
                      t("module.x", 5), t("skip.me", 1))
    target = manifest(t("a", 2), t("b", 4), t("c", 2), t("new", 1), t("x", 5))
    report = diff(source, target, ignore=["skip.*"])
    tree = diff_tree(report, source, target)
    assert statuses(tree) == {"a": "matched", "b": "shape", "c": "dtype", "new": "missing",
                              "x": "renamed", "gone": "unexpected", "module.x": "renamed",
                              "skip.me": "ignored"}
    by_key = {leaf.key: leaf for leaf in tree.root.items()}
    assert by_key["module.x"].partner == "x" and by_key["x"].partner == "module.x"
    assert by_key["module.x"].rule is not None and by_key["x"].severity == "error"
    assert tree.complete


def test_healthy_layers_fold_and_the_broken_one_stands_out() -> None:
    source = manifest(*layered(32, broken=17, prefix="model."))
    target = manifest(*layered(32, prefix="model."))
    tree = diff_tree(diff(source, target), source, target)
    layers = tree.root.children[0].children[0]
    assert [(c.name, c.count) for c in layers.children] == [("{0..16,18..31}", 31), ("17", 1)]
    healthy, broken = layers.children
    assert tree.is_ok(healthy) and not tree.is_ok(broken)
    assert tree.counts(healthy) == {"matched": 62}
    assert tree.counts(broken) == {"shape": 1, "matched": 1}


def test_renamed_layers_fold_by_rule_not_by_partner_key() -> None:
    source = manifest(*layered(4, prefix="module."))
    target = manifest(*layered(4))
    tree = diff_tree(diff(source, target), source, target)
    module = next(c for c in tree.root.children if c.name == "module")
    layers = module.children[0]
    assert [(c.name, c.count) for c in layers.children] == [("{0..3}", 4)]
    assert {leaf.status for leaf in module.items()} == {"renamed"}


def test_info_level_findings_count_as_ok() -> None:
    target = manifest(t("emb.weight", 4, 2, aliases=("head.weight",)),
                      t("head.weight", 4, 2, aliases=("emb.weight",)), live=True)
    source = manifest(t("emb.weight", 4, 2))
    tree = diff_tree(diff(source, target), source, target)
    by_key = {leaf.key: leaf for leaf in tree.root.items()}
    assert by_key["head.weight"].status == "missing"
    assert by_key["head.weight"].severity == "info" and by_key["head.weight"].ok
    assert tree.is_ok(tree.root)


def test_report_alone_gives_the_keys_with_findings() -> None:
    source = manifest(*layered(3, broken=1))
    target = manifest(*layered(3))
    report = diff(source, target)
    tree = diff_tree(report)
    assert not tree.complete
    leaves = list(tree.root.items())
    assert [leaf.key for leaf in leaves] == ["layers.1.w"]
    assert leaves[0].source is not None and leaves[0].source.shape == (8, 4)
    assert leaves[0].target is not None and leaves[0].target.shape == (4, 4)


def test_union_order_is_target_then_source_only_keys() -> None:
    source = manifest(t("z", 1), t("a", 1), t("extra", 1))
    target = manifest(t("a", 1), t("z", 1), t("want", 1))
    keys = [leaf.key for leaf in diff_leaves(diff_manifests(source, target), source, target)]
    assert keys == ["a", "z", "want", "extra"]


def test_building_the_tree_leaves_the_report_json_unchanged() -> None:
    source = manifest(*layered(3, broken=1, prefix="module."))
    target = manifest(*layered(3))
    report = diff(source, target)
    before = report.to_json()
    diff_tree(report, source, target)
    assert report.to_json() == before


def test_multiple_findings_on_one_key_take_the_worst() -> None:
    source = manifest(t("w", 3, dtype="float16"))
    target = manifest(t("w", 4))
    leaf = next(diff_tree(diff(source, target), source, target).root.items())
    assert isinstance(leaf, DiffLeaf)
    assert leaf.status == "shape" and {f.kind for f in leaf.findings} == {"shape", "dtype"}


def test_tree_nodes_are_tree_nodes() -> None:
    tree = diff_tree(diff(manifest(t("a.b", 1)), manifest(t("a.b", 1))))
    assert isinstance(tree.root, TreeNode)
    assert list(tree.root.items()) == []
