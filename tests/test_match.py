"""The matcher's findings follow the contract's semantics."""

from __future__ import annotations

import json

import jsonschema
from tests.helpers import manifest, t

from ckptdiff.diffing.match import diff_manifests


def kinds(report):  # type: ignore[no-untyped-def]
    return sorted((f.kind, f.key, f.severity) for f in report.findings)


def test_identical_manifests_are_compatible() -> None:
    m = manifest(t("a.weight", 2, 3), t("a.bias", 2))
    report = diff_manifests(m, m)
    assert report.compatible
    assert report.findings == ()
    assert report.summary["matched"] == 2


def test_missing_unexpected_shape_dtype_device() -> None:
    source = manifest(t("a", 2), t("b", 3), t("c", 4, 5), t("d", 1, dtype="bfloat16"),
                      t("e", 1, device="cuda:0"))
    target = manifest(t("a", 2), t("z", 3), t("c", 4, 6), t("d", 1), t("e", 1, device="cpu"))
    report = diff_manifests(source, target)
    assert kinds(report) == [
        ("device", "e", "warning"), ("dtype", "d", "warning"), ("missing", "z", "error"),
        ("shape", "c", "error"), ("unexpected", "b", "error"),
    ]
    assert not report.compatible
    assert report.summary == {"matched": 3, "missing": 1, "unexpected": 1, "shape": 1,
                              "dtype": 1, "device": 1, "errors": 3, "warnings": 2, "info": 0}
    shape = next(f for f in report.findings if f.kind == "shape")
    assert shape.source is not None and shape.source.shape == (4, 5)
    assert shape.target is not None and shape.target.shape == (4, 6)
    assert shape.note == "dim 1 is 5 in the source, 6 in the target"


def test_warnings_alone_are_compatible() -> None:
    report = diff_manifests(manifest(t("a", 2, dtype="float16")), manifest(t("a", 2)))
    assert report.compatible
    assert report.failing("warning") and not report.failing("error")


def test_unknown_devices_never_warn() -> None:
    report = diff_manifests(manifest(t("a", 2, device=None)), manifest(t("a", 2, device="cpu")))
    assert report.findings == ()


def test_missing_tied_weight_is_info_with_tied_to() -> None:
    source = manifest(t("emb.weight", 10, 4))
    target = manifest(t("emb.weight", 10, 4, aliases=("head.weight",)),
                      t("head.weight", 10, 4, aliases=("emb.weight",)), live=True)
    report = diff_manifests(source, target)
    (finding,) = report.findings
    assert (finding.kind, finding.severity, finding.tied_to) == ("missing", "info", "emb.weight")
    assert report.compatible


def test_num_batches_tracked_missing_is_info() -> None:
    target = manifest(t("bn.weight", 4), t("bn.num_batches_tracked", dtype="int64"))
    report = diff_manifests(manifest(t("bn.weight", 4)), target)
    assert [(f.kind, f.severity) for f in report.findings] == [("missing", "info")]
    assert report.compatible


def test_non_persistent_buffer_in_source_is_info() -> None:
    target = manifest(t("w", 2), live=True, non_persistent_buffers=["pos_ids"])
    report = diff_manifests(manifest(t("w", 2), t("pos_ids", 1, 512, dtype="int64")), target)
    assert [(f.kind, f.severity) for f in report.findings] == [("unexpected", "info")]


def test_optimizer_state_against_live_model_is_not_an_error() -> None:
    source = manifest(t("w", 2), t("optimizer.state.0.exp_avg", 2, kind="optimizer_slot"),
                      t("epoch_counter", dtype="int64", kind="other"))
    report = diff_manifests(source, manifest(t("w", 2), live=True))
    assert report.compatible
    assert {(f.kind, f.severity) for f in report.findings} == {("optimizer", "info")}
    # Against another checkpoint, the same keys are ordinary unexpected keys.
    assert not diff_manifests(source, manifest(t("w", 2))).compatible


def test_json_report_validates(report_schema: dict[str, object]) -> None:
    source = manifest(t("module.a", 2, 2), t("module.b", 3))
    target = manifest(t("a", 2, 2), t("b", 3), t("c", 1))
    document = json.loads(diff_manifests(source, target).to_json())
    jsonschema.validate(document, report_schema)
    assert document["schema"] == "ckptdiff.report/1"
    assert document["rules"] == [{"pattern": "^module\\.", "replacement": "", "matches": 2}]
