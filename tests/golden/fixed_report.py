"""The fixed report every renderer's golden output is made from (built with tests/helpers)."""

from __future__ import annotations

from tests.helpers import manifest, t

from ckptdiff.diffing.match import diff_manifests
from ckptdiff.diffing.report import Report


def fixed_report() -> Report:
    """A diff with every kind of row: errors, a warning, info, renames, odd characters in keys."""
    layers = [t(f"encoder.layer.{i}.{p}", 4, 4) if p == "weight" else t(f"encoder.layer.{i}.{p}", 4)
              for i in range(3) for p in ("weight", "bias")]
    target = manifest(
        t("embed.weight", 10, 4),
        *layers,
        t("norm.weight", 4), t("norm.bias", 4),
        t("norm.running_mean", 4, kind="buffer"),
        t("norm.num_batches_tracked", dtype="int64", kind="buffer"),
        t("adapter.down.weight", 2, 4), t("adapter.up.weight", 4, 2),
        t("head.weight", 3, 4), t("head.bias", 3),
        t("lm_head.weight", 10, 4, aliases=("embed.weight",)),
        live=True, path="pkg.model:build", fmt="torch-module",
    )
    stored_layers = [t(x.key, *x.shape, dtype="float16" if x.key == "encoder.layer.2.weight"
                       else "float32") for x in layers]
    source = manifest(
        t("embed.weight", 10, 4),
        *stored_layers,
        t("norm.weight", 4), t("norm.bias", 4), t("norm.running_mean", 4, kind="buffer"),
        t("module.adapter.down.weight", 2, 4), t("module.adapter.up.weight", 4, 2),
        t("head.weight", 2, 4), t("head.bias", 2),
        t("stats|rate%<1>,x:y", 1),
        t("optimizer.state.0.exp_avg", 10, 4, kind="optimizer_slot"),
        path="released/v1.2.safetensors", fmt="safetensors",
    )
    return diff_manifests(source, target)
