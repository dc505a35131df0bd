"""The transformers 5.x code ckptdiff writes, run against transformers itself.

The pattern re-enactment is compared with ``WeightRenaming``/``WeightConverter``; each operation
chain is run by transformers' own ops against the torch oracle of the conversion evaluation; and
tiny models saved in other layouts load with ``from_pretrained`` and the emitted mapping, every
tensor equal to the truth. What transformers cannot express is said, not emitted.
"""

from __future__ import annotations

import copy
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ckptdiff.rename.hf_mapping import MAX_LITERAL_RENAMINGS, build_mapping
from ckptdiff.rename.hf_ops import operations
from ckptdiff.rename.hf_patterns import Transform
from ckptdiff.rename.results import Conversion, ConversionOp, Rule, Suggestion
from ckptdiff.rename.snippet import transformers_snippet

KEYS = ["model.layers.0.attn.q.weight", "model.layers.12.mlp.experts.3.w1.weight",
        "encoder.layer.1.attention.gamma", "a.gamma.b.gamma", "lm_head.weight",
        "model.layers.0.attn.q.weight_scale", "backbone.h.0.ln_1.bias", "x.LayerNorm.gamma"]
RENAMINGS = [(r"^model\.", "decoder."), (r"\.gamma$", ".weight"), (r"\.attn\.", ".self_attn."),
             (r"^(encoder\.layer\.\d+\.)attention(?=\.gamma$)", r"\1attn"),
             (r"^backbone(\.h\.\d+\.[^./]+\.bias)$", r"model\1"), ("q.weight", "q_proj.weight"),
             ("mlp.experts.*.w1.weight", "mlp.experts.gate")]


def test_unexpressible_conversions_are_said_not_emitted() -> None:
    keys = [f"layers.0.experts.{e}.{w}.weight" for e in range(2) for w in ("a", "b")]
    mixed = Conversion(tuple(keys), ("layers.0.experts.fused",),
                       (ConversionOp("stack", dim=0),), 0.9, "stack")  # a and b, not one index
    assert isinstance(operations(mixed, keys), str)
    lines = transformers_snippet((), (), (mixed,), keys, ["layers.0.experts.fused"])
    assert lines and all(line.startswith("# not for from_pretrained") for line in lines)
    assert not any("WeightConverter" in line for line in lines)


def test_a_converter_that_would_catch_a_loading_key_is_refused() -> None:
    sources = tuple(f"layers.0.experts.{e}.w.weight" for e in range(3))
    stack = Conversion(sources, ("layers.0.experts.w",), (ConversionOp("stack", dim=0),), 0.9,
                       "stack experts.{i}")
    loading = "shared.experts.0.w.weight"  # matched by "experts.*.w.weight" too
    clean = build_mapping((), (), (stack,), sources, ["layers.0.experts.w"])
    assert clean.converters and not clean.refused
    caught = build_mapping((), (), (stack,), (*sources, loading), ["layers.0.experts.w", loading])
    assert not caught.converters and "collect other keys" in caught.refused[0]


def _chain(renamings: tuple[tuple[str, str], ...], key: str) -> str:
    for source, target in renamings:
        key = Transform((source,), (target,)).rename(key)[0]
    return key


def test_rules_transformers_performs_otherwise_are_completed_or_replaced() -> None:
    # re.sub replaces every match, transformers the first only
    pairs = [("a/b/c", "a.b.c"), ("d/e", "d.e")]
    suggestions = tuple(Suggestion(s, t, 0.9, "/ → .") for s, t in pairs)
    mapping = build_mapping((Rule(r"/", ".", 2),), suggestions, (), [s for s, _ in pairs],
                            [t for _, t in pairs])
    assert mapping.renamings == (("/", "."), (r"^a\.b/c$", "a.b.c"))  # one key completed
    assert all(_chain(mapping.renamings, s) == t for s, t in pairs)
    # a key left unpaired that re.sub renames twice: transformers would name it otherwise, so
    # the rule is not emitted at all; each suggestion gets its literal renaming
    rules = (Rule(r"\.x\.", ".y.", 1),)
    keys = ["p.x.w", "q.x.r.x.w"]
    mapping = build_mapping(rules, (Suggestion("p.x.w", "p.y.w", 0.9, "x → y"),), (), keys,
                            ["p.y.w"])
    assert mapping.renamings == ((r"^p\.x\.w$", "p.y.w"),) and not mapping.refused


# Everything below runs transformers.
transformers = pytest.importorskip("transformers", reason="the emitted code is for transformers")
torch = pytest.importorskip("torch", reason="transformers' operations run on torch tensors")
loading = pytest.importorskip("transformers.core_model_loading")


@pytest.mark.parametrize(("source", "target"), RENAMINGS)
def test_the_reenactment_renames_as_transformers_does(source: str, target: str) -> None:
    theirs = loading.WeightRenaming(source, target)
    ours = Transform((source,), (target,))
    for key in KEYS:
        assert ours.rename(key)[0] == theirs.rename_source_key(key)[0], key


def test_the_reenactment_matches_converters_with_several_patterns() -> None:
    sources = ["mlp.experts.*.w1.weight", "mlp.experts.*.w3.weight", "attn.q"]
    theirs = loading.WeightConverter(list(sources), "fused",
                                     operations=[loading.MergeModulelist(dim=0)])
    ours = Transform(tuple(sources), ("fused",))
    for key in [*KEYS, "model.layers.2.mlp.experts.0.w3.weight", "x.attn.qkv", "x.attn.q"]:
        name, index = ours.rename(key)
        their_name, their_pattern = theirs.rename_source_key(key)
        assert name == their_name, key
        assert (their_pattern is None) == (index is None), key


def _run(conversion: Conversion, tensors: list[Any]) -> None:
    """The conversion's emitted converter, run by transformers' WeightConverter.convert."""
    made = operations(conversion, list(conversion.sources))
    assert not isinstance(made, str), made
    ops = [eval(op, vars(loading)) for op in made.operations]  # noqa: S307 (our own code)
    converter = loading.WeightConverter(list(made.sources), list(made.targets), operations=ops)
    parts = len(made.sources)
    for part, pattern in enumerate(converter.source_patterns):
        converter.collected_tensors[pattern] = [
            (lambda t=t: t) for t in tensors[part::parts]]  # loaders hand callables over

    class Model:  # Split sizes its pieces by the model's parameters
        def get_parameter(self, name: str) -> Any:
            return expected[name]

    from tests.conversion_eval.evaluate import perform

    expected = dict(zip(conversion.targets, perform(conversion.ops, tensors), strict=True))
    result = converter.convert(conversion.targets[0], model=Model())
    assert set(result) == set(expected)
    for key, value in result.items():
        value = value[0] if isinstance(value, list) else value
        assert torch.equal(value, expected[key]), key


JOINS = [
    [ConversionOp("stack", dim=0)],
    [ConversionOp("stack", dim=1)],
    [ConversionOp("concat", dim=0, parts=2, per="experts.{i}"), ConversionOp("stack", dim=0)],
    [ConversionOp("concat", dim=1, parts=2), ConversionOp("stack", dim=0),
     ConversionOp("transpose", dims=(1, 2))],
    [ConversionOp("transpose", dims=(0, 1)), ConversionOp("concat", dim=0, parts=2),
     ConversionOp("stack", dim=0)],
    [ConversionOp("transpose", dims=(0, 1)), ConversionOp("stack", dim=0)],
]


@pytest.mark.parametrize("ops", JOINS, ids=lambda ops: "+".join(o.op for o in ops))
def test_joins_run_by_transformers_equal_the_oracle(ops: list[ConversionOp]) -> None:
    parts = 2 if any(op.op == "concat" for op in ops) else 1
    names = ("w1", "w3")[:parts]
    sources = tuple(f"model.layers.4.mlp.experts.{e}.{n}.weight" for e in range(3) for n in names)
    generator = torch.Generator().manual_seed(0)
    tensors = [torch.randn(5, 4, generator=generator) for _ in sources]
    _run(Conversion(sources, ("model.layers.4.mlp.experts.fused",), tuple(ops), 0.9, "j"),
         tensors)


@pytest.mark.parametrize("sizes", [(4, 4, 4), (6, 3, 3)])
@pytest.mark.parametrize("transposed", [False, True])
def test_splits_run_by_transformers_equal_the_oracle(sizes: tuple[int, ...],
                                                     transposed: bool) -> None:
    ops = [ConversionOp("chunk", dim=0, parts=3, sizes=sizes)]
    ops += [ConversionOp("transpose", dims=(0, 1))] * transposed
    targets = tuple(f"blocks.1.attn.{n}.weight" for n in ("q", "k", "v"))
    tensor = torch.randn(sum(sizes), 5, generator=torch.Generator().manual_seed(1))
    _run(Conversion(("blocks.1.attn.qkv.weight",), targets, tuple(ops), 0.9, "split"), [tensor])


def test_renamed_and_permuted_tensors_are_transposed_by_transformers() -> None:
    pairs = {"tf.blocks.0.conv.kernel": ("blocks.0.conv.weight", (3, 2, 0, 1), (2, 3, 4, 5)),
             "tf.blocks.0.fc.kernel": ("blocks.0.fc.weight", (1, 0), (6, 7))}
    suggestions = tuple(Suggestion(s, t, 0.9, "tf", "permute", axes)
                        for s, (t, axes, _) in pairs.items())
    rules = (Rule(r"^tf\.", "", 2), Rule(r"\.kernel$", ".weight", 2))
    mapping = build_mapping(rules, suggestions, (), list(pairs), [t for t, _, _ in pairs.values()])
    assert not mapping.refused and len(mapping.converters) == 2
    renamings = [loading.WeightRenaming(s, t) for s, t in mapping.renamings]
    converters = [loading.WeightConverter(list(c.sources), list(c.targets),
                                          operations=[eval(op, vars(loading))  # noqa: S307
                                                      for op in c.operations])
                  for c in mapping.converters]
    for source, (target, axes, shape) in pairs.items():
        name, pattern = loading.rename_source_key(source, renamings, converters)
        assert name == target and pattern is not None
        converter = next(c for c in converters if pattern in c.source_patterns)
        tensor = torch.randn(*shape, generator=torch.Generator().manual_seed(2))
        converter.collected_tensors[pattern] = [lambda t=tensor: t]
        (value,) = converter.convert(target).values()
        assert torch.equal(value, tensor.permute(*axes))
    # each permuted tensor by its own name: a neighbour of the same name keeps its layout
    assert {c.sources for c in mapping.converters} == {
        (r"^blocks\.0\.conv\.weight$",), (r"^blocks\.0\.fc\.weight$",)}
    # too many to list: nothing at all rather than an untransposed (maybe silently wrong) load
    many = tuple(Suggestion(f"tf.b.{i}.fc.kernel", f"b.{i}.fc.weight", 0.9, "tf", "transpose",
                            (1, 0)) for i in range(MAX_LITERAL_RENAMINGS + 1))
    crowded = build_mapping(rules, many, (), [s.source_key for s in many],
                            [s.target_key for s in many])
    assert not crowded.renamings and not crowded.converters
    assert "dimensions reordered" in crowded.refused[-1]


@pytest.fixture
def registry() -> Iterator[None]:
    """transformers' conversion registry, restored after the test registered a mapping."""
    import transformers.conversion_mapping as mapping

    # the first lookup builds the cache the test then copies
    mapping.get_checkpoint_conversion_mapping("legacy")  # type: ignore[no-untyped-call]
    cache = copy.deepcopy(mapping._checkpoint_conversion_mapping_cache)
    users = set(mapping.USER_REGISTERED_MAPPINGS)
    yield
    mapping._checkpoint_conversion_mapping_cache = cache
    mapping.USER_REGISTERED_MAPPINGS.clear()
    mapping.USER_REGISTERED_MAPPINGS.update(users)


def _saved(model: Any, directory: Path, rename: Any) -> tuple[Path, dict[str, Any]]:
    """``model`` saved by hand in another layout: ``rename(key)`` of its hub keys."""
    from safetensors.torch import save_file

    model.config.save_pretrained(directory)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.save_pretrained(directory / "hub")  # the hub layout: experts one by one
    from safetensors.torch import load_file

    hub = load_file(str(directory / "hub" / "model.safetensors"))
    save_file({rename(k): v.contiguous() for k, v in hub.items()},
              str(directory / "model.safetensors"))
    return directory / "model.safetensors", model.state_dict()


def _emitted(checkpoint: Path, model: Any) -> tuple[str, dict[str, Any], Any]:
    from ckptdiff.diffing.match import diff_manifests
    from ckptdiff.readers import read
    from ckptdiff.render.rows import transformers_code
    from ckptdiff.targets.resolve import resolve

    report = diff_manifests(read(checkpoint), resolve(model), loader="default")
    code = "\n".join(transformers_code(report))
    namespace: dict[str, Any] = {}
    exec(code, namespace)  # noqa: S102 (the code under test)
    return code, namespace, report


def _loads_exactly(model_class: Any, directory: Path, truth: dict[str, Any],
                   **kwargs: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded, info = model_class.from_pretrained(directory, output_loading_info=True, **kwargs)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    assert not info["mismatched_keys"] and not info.get("conversion_errors"), info
    state = loaded.state_dict()
    assert set(state) == set(truth)
    assert all(torch.equal(state[k], v) for k, v in truth.items())
    return loaded


def _tiny(model_type: str, **extra: Any) -> Any:
    from tests.conversion_eval.models import SMALL

    config = transformers.AutoConfig.for_model(model_type, **{**SMALL, **extra})
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(config)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator))
    return model


def test_moe_experts_unfused_and_renamed_load_with_the_registered_mapping(
        tmp_path: Path, registry: None) -> None:
    model = _tiny("mixtral")
    # experts one by one (the hub layout) under another prefix and block name
    checkpoint, truth = _saved(model, tmp_path, lambda k: re.sub(
        r"^model\.", "decoder.", k).replace(".block_sparse_moe.", ".moe."))
    code, namespace, report = _emitted(checkpoint, model)
    assert "register_checkpoint_conversion_mapping('MixtralForCausalLM'" in code
    assert "MergeModulelist(dim=0), Concatenate(dim=1)" in code
    loaded = _loads_exactly(type(model), tmp_path, truth)
    # the work was the emitted mapping's, not a built-in one's
    ours = {repr(t) for t in namespace["MAPPING"]}
    assert {repr(t) for t in loaded._weight_conversions} <= ours
    # the plain-torch snippets do the same: convert() reads the stored names, revise() after
    from ckptdiff.rename.snippet import conversion_snippet, python_snippet

    plain: dict[str, Any] = {}
    exec("\n".join(python_snippet(report.rules, report.suggestions)), plain)  # noqa: S102
    exec("\n".join(conversion_snippet(report.conversions)), plain)  # noqa: S102
    assert "revise(convert(state_dict))" in "\n".join(conversion_snippet(report.conversions))
    from safetensors.torch import load_file

    fresh = type(model)(model.config)
    fresh.load_state_dict(plain["revise"](plain["convert"](load_file(str(checkpoint)))))
    assert all(torch.equal(v, truth[k]) for k, v in fresh.state_dict().items())
    # the table and the markdown show it, next to the convert() snippet
    from ckptdiff.render.markdown import MarkdownRenderer
    from ckptdiff.render.table import TableRenderer

    table = TableRenderer().render(report)
    assert table.index("def convert(state_dict):") < table.index("For transformers 5.x")
    assert all(f"    {line}".rstrip() in table for line in code.splitlines())
    markdown = MarkdownRenderer().render(report)
    assert f"```python\n{code}\n```" in markdown


def test_a_checkpoint_from_pretrained_loads_as_it_is_gets_nothing_to_register(
        tmp_path: Path) -> None:
    from tests.conversion_eval.models import build_case

    case = build_case("granitemoe", tmp_path)  # the hub layout: transformers' own mapping
    code, namespace, report = _emitted(case.checkpoint, case.model)
    assert report.suggestions and code.endswith("loads it as it is: nothing to register")
    assert not namespace.keys() - {"__builtins__"}


def test_no_transformers_code_where_transformers_does_not_load_the_target() -> None:
    from tests.golden.fixed_report import fixed_report

    from ckptdiff.render.rows import transformers_code

    report = fixed_report()  # renames, but a plain torch module judged by key parity
    assert report.suggestions and not transformers_code(report)


def test_pure_renames_load_with_key_mapping(tmp_path: Path) -> None:
    model = _tiny("llama")
    checkpoint, truth = _saved(model, tmp_path, lambda k: re.sub(
        r"^model\.", "transformer.", k).replace(".self_attn.", ".attention.")
        .replace(".input_layernorm.", ".ln_1."))
    code, namespace, _ = _emitted(checkpoint, model)
    assert "WeightConverter" not in code and "key_mapping=KEY_MAPPING" in code
    _loads_exactly(type(model), tmp_path, truth, key_mapping=namespace["KEY_MAPPING"])


@pytest.mark.parametrize("name", ["gte", "exaone", "granitemoe"])
def test_hub_layouts_load_with_the_emitted_code(name: str, tmp_path: Path,
                                                registry: None) -> None:
    """Upstream cases: a Chunk, a lookahead renaming, literal renamings. Every key the report
    accounts for loads as ``from_pretrained`` loads it (fused qkv it misses stay missing)."""
    from tests.conversion_eval.models import build_case

    from ckptdiff.diffing.match import diff_manifests
    from ckptdiff.readers import read
    from ckptdiff.targets.resolve import resolve

    case = build_case(name, tmp_path)
    # (the report itself says from_pretrained loads some of them as they are: code regardless)
    report = diff_manifests(read(case.checkpoint), resolve(case.model))
    code = "\n".join(transformers_snippet(
        report.rules, report.suggestions, report.conversions,
        {*report.matched_keys, *(f.key for f in report.findings if f.source is not None)},
        {*report.matched_keys, *(f.key for f in report.findings if f.target is not None)},
        type(case.model).__name__))
    namespace: dict[str, Any] = {}
    exec(code, namespace)  # noqa: S102 (the code under test)
    kwargs = {"key_mapping": namespace["KEY_MAPPING"]} if "KEY_MAPPING" in namespace else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded, info = type(case.model).from_pretrained(case.directory, output_loading_info=True,
                                                        **kwargs)
    claimed = {*report.matched_keys, *(s.target_key for s in report.suggestions),
               *(k for c in report.conversions for k in c.targets)}
    state = loaded.state_dict()
    assert not info["missing_keys"] & claimed
    assert all(torch.equal(state[k], case.loaded[k]) for k in claimed)
    ours = {repr(t) for t in namespace.get("MAPPING", ())}
    assert all(repr(t) in ours for t in loaded._weight_conversions
               if isinstance(t, loading.WeightConverter))


def test_without_the_class_name_the_code_registers_for_the_one_given(registry: None) -> None:
    import transformers.conversion_mapping as mapping

    sources = tuple(f"layers.0.experts.{e}.w.weight" for e in range(3))
    stack = Conversion(sources, ("layers.0.experts.w",), (ConversionOp("stack", dim=0),), 0.9,
                       "stack experts.{i}")
    code = "\n".join(transformers_snippet((), (), (stack,), sources, ["layers.0.experts.w"]))
    namespace: dict[str, Any] = {}
    exec(code, namespace)  # noqa: S102 (the code under test)
    namespace["register"]("TinyMoeModel")
    (converter,) = mapping.get_checkpoint_conversion_mapping("TinyMoeModel")  # type: ignore[no-untyped-call]
    assert converter.source_patterns == ["experts.*.w.weight"]
    assert repr(converter.operations) == "[MergeModulelist(dim=0)]"
