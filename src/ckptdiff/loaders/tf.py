"""The TensorFlow dry run: what ``tf.train.Checkpoint(...).restore(path)`` and its status checks do.

TF2 restore matches objects by their path in the object graph, every object at once: model
weights, optimizer slots, ``save_counter``. A value whose shape differs raises ``ValueError`` and
a dtype that differs raises ``InvalidArgumentError`` during ``restore`` itself (TensorFlow never
casts, unlike torch). Otherwise restore loads what matches and defers the rest; then

- ``assert_consumed()`` raises on the first checkpoint value without an object ("Unresolved object
  in checkpoint (root).optimizer._variables.6"), else on objects without a value ("Found N Python
  objects that were not bound to checkpointed values");
- ``assert_existing_objects_matched()`` raises only for objects without a value;
- ``expect_partial()`` raises for neither: it silences the warnings about unused values.

Objects are paired by ckptdiff key (which walks the model before the optimizer); messages name
them as TensorFlow prints them, from the raw checkpoint key.
"""

from __future__ import annotations

from ckptdiff.loaders.common import KeySets, listed, shape_text
from ckptdiff.loaders.frameworks import tf_object_path
from ckptdiff.loaders.statement import LoadStatement
from ckptdiff.manifest import KINDS, Manifest

STATUS_CHECKS = (".assert_consumed()", ".assert_existing_objects_matched()", ".expect_partial()")


def explain_tf(source: Manifest, target: Manifest) -> list[LoadStatement]:
    """Statements for restoring the TF checkpoint ``source`` into the objects of ``target``."""
    if source.metadata.get("tf_checkpoint_kind") == "tf1":
        return [LoadStatement("tensorflow", "tf.train.Checkpoint(...).restore(path)",
                              "not_applicable", "a TF1 name-based checkpoint: it has no object "
                              "graph, so restore falls back to matching variable names; the key "
                              "findings above are what that matching sees.")]
    keys = KeySets.of(source, target, KINDS)
    # save_counter is the Checkpoint's own variable, not one of its keyword arguments.
    roots = sorted({key.split("/", 1)[0] for key in target.by_key} - {"save_counter"})
    # A SavedModel's variables are a TF2 checkpoint at <dir>/variables/variables.
    path = (f"{source.path.rstrip('/')}/variables/variables" if source.format == "tf-savedmodel"
            else source.path)
    arguments = ", ".join(f"{r}=..." for r in roots)
    root = target.metadata.get("object_graph_root")  # a live model keyed by object paths
    if root is not None:
        arguments = f"{root or 'root'}=model"
    call = f"tf.train.Checkpoint({arguments}).restore({path!r})"
    failure = _restore_failure(source, target, keys)
    if failure is not None:
        message, failing = failure
        # restore itself raises, so every status check chained on it does too.
        return [LoadStatement("tensorflow", call + suffix, "raises", message, failing)
                for suffix in ("", *STATUS_CHECKS)]
    # Checkpoint.restore creates the restoring Checkpoint's own save_counter: always matched.
    unresolved = [_tf_name(source, k) for k in keys.unexpected if k != "save_counter"]
    unbound = keys.missing
    statements = [LoadStatement(
        "tensorflow", call, "partial" if unresolved or unbound else "loads",
        f"restores {len(keys.matched)} values; {len(unresolved)} checkpoint value(s) have no "
        f"object (kept for objects created later), {len(unbound)} object(s) get no value and "
        "keep their initial values.", (*unresolved, *unbound))]
    if unresolved:
        consumed = (f"AssertionError: Unresolved object in checkpoint: it names the first it "
                    f"meets of {listed(unresolved)}")
        statements.append(LoadStatement("tensorflow", call + ".assert_consumed()", "raises",
                                        consumed, tuple(unresolved)))
    elif unbound:
        statements.append(LoadStatement(
            "tensorflow", call + ".assert_consumed()", "raises",
            f"AssertionError: Found {len(unbound)} Python objects that were not bound to "
            f"checkpointed values: {listed(unbound)}", tuple(unbound)))
    else:
        statements.append(LoadStatement("tensorflow", call + ".assert_consumed()", "loads",
                                        "every value has an object and every object a value."))
    statements.append(LoadStatement(
        "tensorflow", call + ".assert_existing_objects_matched()",
        "raises" if unbound else "loads",
        f"AssertionError: Found {len(unbound)} Python objects that were not bound to "
        f"checkpointed values: {listed(unbound)}" if unbound else
        "every existing object has a value (unused checkpoint values do not count).",
        tuple(unbound)))
    statements.append(LoadStatement(
        "tensorflow", call + ".expect_partial()", "partial" if unresolved or unbound else "loads",
        f"raises nothing and silences the warnings about {len(unresolved)} unused value(s)"
        f"{'; ' + str(len(unbound)) + ' object(s) keep their initial values' if unbound else ''}"
        ".", (*unresolved, *unbound)))
    return statements


def _tf_name(manifest: Manifest, key: str) -> str:
    return tf_object_path(manifest.by_key[key]) or key


def _restore_failure(source: Manifest, target: Manifest,
                     keys: KeySets) -> tuple[str, tuple[str, ...]] | None:
    if keys.shape:
        key = keys.shape[0]
        was, now = source.by_key[key], target.by_key[key]
        name = now.variable_name or was.variable_name or key
        return (f"ValueError: Received incompatible tensor with shape {shape_text(was.shape)} "
                f"when attempting to restore variable with shape {shape_text(now.shape)} and "
                f"name {name}:0 ({len(keys.shape)} value(s) differ in shape: "
                f"{listed(keys.shape)})", tuple(keys.shape))
    dtypes = [k for k in keys.dtype if k not in keys.shape]
    if dtypes:
        key = dtypes[0]
        was, now = source.by_key[key], target.by_key[key]
        raw = next((a for a in (key, *was.aliases) if a.endswith("VARIABLE_VALUE")), key)
        return (f"InvalidArgumentError: tensor_name = {raw}; expected dtype {now.dtype} does not "
                f"equal original dtype {was.dtype} (TensorFlow does not cast; {len(dtypes)} "
                f"value(s) differ in dtype: {listed(dtypes)})", tuple(dtypes))
    return None
