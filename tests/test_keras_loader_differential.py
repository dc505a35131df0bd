"""ckptdiff's verdict against the real Keras 3 and TensorFlow loaders, case by case (issue 15).

Each case writes a file from a tiny Keras model (once per model and file kind), builds the
target variant, diffs it, fills the target's variables with NaN and runs the loader the user
would call: ``model.load_weights(path)`` (``skip_mismatch``/``by_name`` where the case says)
for Keras files, ``tf.train.Checkpoint(model=model).restore(prefix)`` for a tf.train checkpoint,
``tf.train.Checkpoint(root=model).restore(savedmodel/variables/variables)`` for a SavedModel.
It loads when it raises nothing, warns of nothing skipped and left no variable NaN (checked by
value). ckptdiff's default verdict must agree, and its error findings must name the layers
(Keras) or variables (TensorFlow) the loader names. ``pytest -s`` shows the agreement table.
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

tf = pytest.importorskip("tensorflow", reason="TensorFlow writes and restores the checkpoints")
keras = pytest.importorskip("keras", reason="the targets and loaders are Keras 3's")
pytest.importorskip("h5py", reason="Keras files are HDF5")
np = pytest.importorskip("numpy")

import ckptdiff  # noqa: E402
from ckptdiff.diffing.compare import resolve_pair  # noqa: E402
from ckptdiff.manifest import Manifest  # noqa: E402
from keras_cases import FILES, MODELS, Case, cases, write  # noqa: E402

RESULTS: list[tuple[Case, bool, bool]] = []
ALL_CASES = cases()
_SKIPPED = re.compile(r"could not be loaded|Skipping loading")


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], str]:
    """Every (model, file kind) written once from the base model."""
    folder = tmp_path_factory.mktemp("keras_differential")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {(model, file): write(model, file, folder / f"{model}-{file}")
                for model in MODELS for file in FILES}


def _run_loader(case: Case, path: str, model: Any) -> tuple[bool, str]:
    """(the loader succeeded without skipping anything, the text of its error or warnings)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if case.file == "tf_checkpoint":
                tf.train.Checkpoint(model=model).restore(path).expect_partial()
            elif case.file == "savedmodel":
                variables = str(Path(path) / "variables" / "variables")
                tf.train.Checkpoint(root=model).restore(variables).expect_partial()
            else:
                loader = case.loader or ""
                model.load_weights(path, **({"by_name": True} if "by_name" in loader else {}),
                                   **({"skip_mismatch": True} if "skip" in loader else {}))
        except Exception as exc:  # the loader's own failure is the outcome under test
            return False, f"{type(exc).__name__}: {exc}"
    text = "\n".join(str(w.message) for w in caught if _SKIPPED.search(str(w.message)))
    return not text, text


def _variable_path(target: Manifest, key: str) -> str:
    info = target.by_key[key]
    user_keys = target.metadata.get("user_keys") or {}
    return info.variable_name or str(user_keys.get(key, key))


def _unfilled(target: Manifest, model: Any) -> set[str]:
    """Target keys whose variable still holds NaN everywhere."""
    by_path = {v.path: v for v in model.weights}
    return {t.key for t in target.tensors if t.kind in ("parameter", "buffer")
            and bool(np.isnan(by_path[_variable_path(target, t.key)].numpy()).all())}


def _layer_of(target: Manifest, key: str) -> str | None:
    """The target layer a key in the loader's key space belongs to, by its user name."""
    space = target.metadata.get("key_space")
    group = (key.rpartition("/vars/")[0] if space == "keras-saved-path"
             else key.rpartition("/weight#")[0])
    for info in target.tensors:
        other = (info.key.rpartition("/vars/")[0] if space == "keras-saved-path"
                 else info.key.rpartition("/weight#")[0])
        if other == group and info.kind in ("parameter", "buffer"):
            name = str((target.metadata.get("user_keys") or {}).get(info.key, info.key))
            # enc/kernel, rnn/lstm_cell/kernel, or positional where ckptdiff cannot name the
            # variable (a custom-named layer held in an attribute): head_renamed/vars/0
            chain = name.rpartition("/vars/")[0] if "/vars/" in name else name.rpartition("/")[0]
            return chain.rsplit("/", 1)[-1] or None
    return None


def _named_layers(text: str) -> set[str]:
    """Layer names in Keras' messages: ``<Dense name=head, built=True>``, ``(named head``."""
    return set(re.findall(r"name=([^,>\s]+)", text)) | set(re.findall(r"named (\w+)", text))


def _error_keys(report: ckptdiff.Report) -> set[str]:
    return {f.key for f in report.findings
            if f.severity == "error" and f.kind in ("missing", "unexpected", "shape")}


@pytest.mark.parametrize("case", ALL_CASES, ids=[c.name for c in ALL_CASES])
def test_default_verdict_agrees_with_the_loader(case: Case,
                                                written: dict[tuple[str, str], str]) -> None:
    path = written[(case.model, case.file)]
    model = MODELS[case.model](case.variant)
    source, target = resolve_pair(path, model, loader=case.loader)
    report = ckptdiff.diff(source, target, loader=case.loader)
    for variable in model.weights:
        variable.assign(np.full(tuple(variable.shape), np.nan, "float32"))
    succeeded, text = _run_loader(case, path, model)
    unfilled = _unfilled(target, model)
    loads = succeeded and not unfilled
    RESULTS.append((case, loads, report.compatible))
    judged = report.verdicts[0]
    assert judged.default and judged.loads == report.compatible
    assert judged.framework != "ckptdiff", "a Keras/TF pair must be judged by its loader"
    assert report.compatible == loads, f"{case.name}: {judged.reason} / loader: {text[:300]}"
    errors = _error_keys(report)
    if loads:
        assert not errors, report.to_text()
    elif case.file in ("tf_checkpoint", "savedmodel"):
        if succeeded:  # restore names nothing: the variables it left unfilled are the misses
            assert unfilled == {k for k in errors if k in target.by_key}, case.name
    else:
        layers = {_layer_of(target, key) for key in errors} - {None}
        named = _named_layers(text) & {_layer_of(target, t.key) for t in target.tensors}
        assert errors, case.name
        if "Layer count mismatch" not in text:
            assert named <= layers, f"{case.name}: loader names {named}, ckptdiff {layers}"
        if case.file != "legacy_h5" and not case.loader:  # Keras 3 files collect every failure
            assert named == layers, f"{case.name}: loader names {named}, ckptdiff {layers}"


def test_agreement_table(capsys: pytest.CaptureFixture[str]) -> None:
    """Printed after the matrix: cases per file kind and model, and how many agreed."""
    if not RESULTS:
        pytest.skip("the matrix did not run in this session (select it too)")
    rows: Counter[tuple[str, bool]] = Counter()
    for case, loads, compatible in RESULTS:
        rows[(f"file {case.file}", loads == compatible)] += 1
        rows[(f"model {case.model}", loads == compatible)] += 1
    loaded = sum(loads for _, loads, _ in RESULTS)
    lines = ["", "keras/tf loader differential:  cases  agree"]
    for label in dict.fromkeys(label for label, _ in rows):
        total = rows[(label, True)] + rows[(label, False)]
        lines.append(f"  {label:<28} {total:>5}  {rows[(label, True)]:>5}")
    agreed = sum(loads == compatible for _, loads, compatible in RESULTS)
    lines.append(f"  {'all':<28} {len(RESULTS):>5}  {agreed:>5}  ({loaded} load, "
                 f"{len(RESULTS) - loaded} fail)")
    with capsys.disabled():
        print("\n".join(lines))
    assert len(RESULTS) >= 60 and agreed == len(RESULTS)


@pytest.mark.parametrize(("name", "loads"), [
    ("sequential-renamed-weights_h5", True), ("sequential-removed-weights_h5", True),
    ("functional-reordered-keras", True), ("functional-reordered-legacy_h5", False),
    ("sequential-renamed-legacy_h5", True),
    ("sequential-renamed-legacy_h5-keras.load_weights-by_name", False),
    ("sequential-widened-weights_h5-keras.load_weights-skip_mismatch", False),
    ("sequential-identity-tf_checkpoint", True), ("subclassed-reordered-weights_h5", False),
])
def test_matrix_covers_what_keras_decides(name: str, loads: bool) -> None:
    """The loaders' own outcomes for the rules the contract names (a renamed layer and a
    leftover group load by saving path; legacy pairs by order; skip_mismatch only warns)."""
    if not RESULTS:
        pytest.skip("the matrix did not run in this session (select it too)")
    case = next(c for c in ALL_CASES if c.name == name)
    assert [outcome for c, outcome, _ in RESULTS if c is case] == [loads]
