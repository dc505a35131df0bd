"""The Keras dry run: what ``model.load_weights(path)`` would do with the checkpoint.

Keras 3 ``.weights.h5`` and ``.keras`` files load by saved path (``layers/dense_1/vars/0``), not by
layer name: each layer of the model reads the variables under its own path, a count that differs
or a shape that differs fails that layer, and ``load_weights`` raises one ``ValueError`` for all
failed layers (``skip_mismatch=True`` turns it into a warning and leaves them initialised). Paths
the model does not have are ignored; dtypes are cast by ``assign``. Legacy ``.h5`` files load by
position (``loaders.keras_legacy``). TensorFlow checkpoints are not ``load_weights`` files in
Keras 3.
"""

from __future__ import annotations

from ckptdiff.loaders.common import listed
from ckptdiff.loaders.frameworks import TF_FORMATS
from ckptdiff.loaders.keras_legacy import explain_legacy_h5
from ckptdiff.loaders.optimizer_slots import WEIGHT_KINDS
from ckptdiff.loaders.statement import LoadStatement
from ckptdiff.loaders.tf import explain_tf
from ckptdiff.manifest import Manifest

Layers = dict[str, dict[str, str]]  # saved layer path -> {variable index: key}


def explain_keras(source: Manifest, target: Manifest) -> list[LoadStatement]:
    """Statements for ``model.load_weights(source)`` into the Keras model ``target``."""
    call = f"model.load_weights({source.path!r})"
    if source.format == "keras-h5":
        return explain_legacy_h5(source, target, call)
    if source.format in ("keras-weights-h5", "keras-zip"):
        return _explain_by_path(source, target, call)
    if source.format in TF_FORMATS:
        unsupported = LoadStatement(
            "keras", call, "raises", "ValueError: File format not supported: Keras 3 "
            "load_weights reads .keras, .weights.h5 and legacy .h5 files.")
        if target.metadata.get("key_space") == "tf-object-graph":
            # The model was keyed by the object paths restore pairs it with the checkpoint by.
            return [unsupported, *explain_tf(source, target)]
        return [
            unsupported,
            LoadStatement("tensorflow", f"tf.train.Checkpoint(model=model).restore("
                          f"{source.path!r})", "not_applicable", (
                              "restore matches objects by their path from the Checkpoint root; "
                              "ckptdiff compares a Keras model by its .weights.h5 names, so to "
                              "replay restore, diff against a checkpoint the model writes: "
                              "tf.train.Checkpoint(model=model).write(prefix).")),
        ]
    return [LoadStatement("keras", call, "not_applicable",
                          f"a {source.format} checkpoint is not a Keras weights file; convert it "
                          "first (keys, and transposed kernels, as the findings say).")]


def _layers(paths: dict[str, str]) -> Layers:
    layers: Layers = {}
    for key, path in paths.items():
        if path.startswith("vars/"):
            layer, index = "", path[len("vars/"):]
        else:
            layer, _, index = path.rpartition("/vars/")
        layers.setdefault(layer, {})[index] = key
    return layers


def _source_paths(source: Manifest) -> dict[str, str]:
    member = source.metadata.get("weights_member")
    prefix = f"{member}/" if isinstance(member, str) else ""
    return {t.key: t.storage.removeprefix(prefix) for t in source.tensors
            if t.kind in WEIGHT_KINDS and t.storage}


def _explain_by_path(source: Manifest, target: Manifest, call: str) -> list[LoadStatement]:
    saved_paths = target.metadata.get("saved_paths")
    if not isinstance(saved_paths, dict):
        return [LoadStatement("keras", call, "not_applicable", "the target does not record the "
                              "paths save_weights would write (not a live Keras 3 model).")]
    stored, expected = _layers(_source_paths(source)), _layers(saved_paths)
    failed: list[str] = []  # one error per layer, as Keras counts them
    failed_keys: list[str] = []
    casts: dict[str, str] = {}  # target key -> "float32 → float64"
    renamed = 0
    for layer, variables in expected.items():
        found = stored.get(layer, {})
        user_keys = target.metadata.get("user_keys") or {}
        first = next(iter(variables.values()))
        name = _layer_name(str(user_keys.get(first, first)))
        if set(found) != set(variables):
            failed.append(f"Layer '{name}' expected {len(variables)} variables, but received "
                          f"{len(found)} variables during loading")
            failed_keys.extend(variables.values())
            continue
        errors = []
        for index, key in variables.items():
            was, now = source.by_key[found[index]], target.by_key[key]
            renamed += found[index] != key
            if was.shape != now.shape:
                errors.append(f"variable.shape={tuple(now.shape)}, Received: "
                              f"value.shape={tuple(was.shape)}")
            elif was.dtype != now.dtype:
                casts[key] = f"{was.dtype} → {now.dtype}"
        if errors:
            failed.append(f"{name}: the shape of the target variable and the shape of the "
                          f"target value in `variable.assign(value)` must match. {errors[0]}")
            failed_keys.extend(variables.values())
    ignored = [key for layer, variables in stored.items() if layer not in expected
               for key in variables.values()]
    statements = _statements(call, failed, failed_keys, ignored, renamed)
    if casts:
        statements.append(LoadStatement(
            "keras", call, "casts", f"variable.assign() casts {len(casts)} variable(s) silently "
            f"({', '.join(sorted(set(casts.values())))}).", tuple(casts)))
    return statements


def _layer_name(key: str) -> str:
    """The layer's name in Keras messages: the key's last layer segment (``enc/d2/kernel``,
    ``scale/vars/0`` for a variable ckptdiff cannot name)."""
    layers = key.rpartition("/vars/")[0] if "/vars/" in key else key.rpartition("/")[0]
    return layers.rsplit("/", 1)[-1] if layers else "model"


def _statements(call: str, failed: list[str], failed_keys: list[str], ignored: list[str],
                renamed: int) -> list[LoadStatement]:
    extra = (f" The file's {len(ignored)} variable(s) under paths the model lacks are ignored "
             f"({listed(ignored)})." if ignored else "")
    if renamed:
        extra += (f" {renamed} variable(s) load although their names differ: load_weights "
                  "pairs saved paths (layer class and position), not layer names.")
    if not failed:
        return [LoadStatement("keras", call, "partial" if ignored else "loads",
                              f"loads every variable of the model.{extra}", tuple(ignored))]
    message = (f"ValueError: A total of {len(failed)} objects could not be loaded. "
               f"{'; '.join(failed[:3])}.{extra}")
    skip_call = call[:-1] + ", skip_mismatch=True)"
    return [
        LoadStatement("keras", call, "raises", message, tuple(failed_keys)),
        LoadStatement("keras", skip_call, "partial", f"warns that {len(failed)} objects could "
                      f"not be loaded and leaves their {len(failed_keys)} variable(s) at their "
                      f"initial values.{extra}", tuple(failed_keys)),
    ]
