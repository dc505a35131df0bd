"""The layout's rules, checked from the imports themselves (an AST walk over ``src/ckptdiff``).

The rules are those of the shared ``architecture.md``: parts ranked bottom to top, every import
pointing down (or within its own part), no import circles between modules, the core importing
nothing else of the package, renderers seeing a Report and the core only, and no framework
imported at module top (readers never import one at all). Each failure names the import.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "ckptdiff"

# Bottom to top. A module of one part may import its own part and the parts ranked below it.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("manifest", "dtypes", "errors", "jsonlines", "collector", "records"),  # the core
    ("sources",),
    ("readers",),
    ("targets",),
    ("rename",),
    ("loaders",),
    ("diffing",),  # not "diff": ckptdiff.diff is the public function
    ("graph",),
    ("fix",),
    ("render",),
    ("ci",),
    ("api", "testing", ""),  # "" is the package's own __init__
    ("cli", "__main__"),
)
CORE = LAYERS[0]
FRAMEWORKS = ("torch", "tensorflow", "keras", "tf_keras", "h5py", "transformers")
# What a renderer may see besides the core: the report, the key tree and the rename snippets
# (code, and the rules-file fragments that state a declined reading: text of the engine's records).
RENDER_MAY_SEE = ("ckptdiff.diffing.report", "ckptdiff.graph", "ckptdiff.rename.snippet",
                  "ckptdiff.rename.statements", "ckptdiff.render")
# Display methods import their renderer inside the method (a notebook's ``_repr_html_``, the
# grouped text of a report): the only upward imports allowed, and only of ``render``.
DISPLAY_METHODS = ("_repr_html_", "to_text")


@dataclass(frozen=True)
class Import:
    """One import statement's target inside ckptdiff (or a framework), and where it stands."""

    importer: str
    imported: str
    line: int
    at_top: bool  # executed when the module is imported (not inside a function)
    type_only: bool  # under ``if TYPE_CHECKING:``
    function: str | None  # the enclosing function's name, when not at top

    def __str__(self) -> str:
        where = "at module top" if self.at_top else f"inside {self.function}()"
        return f"{self.importer} imports {self.imported} (line {self.line}, {where})"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in SRC.rglob("*.py")}


def resolve(base: str, name: str | None) -> str:
    """The ckptdiff module ``from base import name`` loads (``name`` itself when a module)."""
    if name and f"{base}.{name}" in MODULES:
        return f"{base}.{name}"
    return base


def _walk(node: ast.AST, module: str, function: str | None, type_only: bool,
          package: str) -> Iterator[Import]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield from _walk(child, module, child.name, type_only, package)
            continue
        guarded = type_only or (isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(
            child.test))
        if isinstance(child, ast.Import):
            for alias in child.names:
                yield Import(module, alias.name, child.lineno, function is None, type_only,
                             function)
        elif isinstance(child, ast.ImportFrom):
            base = child.module or ""
            if child.level:
                anchor = package.split(".")[: len(package.split(".")) - child.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in child.names:
                yield Import(module, resolve(base, alias.name), child.lineno, function is None,
                             type_only, function)
        elif isinstance(child, ast.If) and guarded and not type_only:
            for stmt in child.body:
                yield from _walk(ast.Module(body=[stmt], type_ignores=[]), module, function,
                                 True, package)
            for stmt in child.orelse:
                yield from _walk(ast.Module(body=[stmt], type_ignores=[]), module, function,
                                 False, package)
        else:
            yield from _walk(child, module, function, type_only, package)


def imports_of(module: str) -> list[Import]:
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return list(_walk(tree, module, None, False, package))


ALL_IMPORTS = [imp for module in sorted(MODULES) for imp in imports_of(module)]
INTERNAL = [imp for imp in ALL_IMPORTS if imp.imported.split(".")[0] == "ckptdiff"]


def part_of(module: str) -> str:
    """The part a module belongs to: ``ckptdiff.readers.torch.zip`` -> ``readers``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def rank(module: str) -> int:
    part = part_of(module)
    for level, members in enumerate(LAYERS):
        if part in members:
            return level
    raise AssertionError(f"{module} belongs to no layer: add its part to LAYERS")


def test_every_module_belongs_to_a_layer() -> None:
    for module in MODULES:
        rank(module)


def layer_violations(imports: list[Import]) -> list[str]:
    bad = []
    for imp in imports:
        if imp.imported not in MODULES:
            continue
        if rank(imp.imported) <= rank(imp.importer):
            continue
        if _is_display(imp):
            continue
        bad.append(f"upward import: {imp}")
    return bad


def test_imports_point_down_the_layers() -> None:
    assert layer_violations(INTERNAL) == []


def test_core_imports_nothing_else_of_the_package() -> None:
    bad = [str(imp) for imp in INTERNAL
           if part_of(imp.importer) in CORE and imp.imported in MODULES
           and part_of(imp.imported) not in CORE
           and not _is_display(imp)]
    assert bad == []


def test_renderers_see_a_report_and_the_core_only() -> None:
    bad = [str(imp) for imp in INTERNAL
           if part_of(imp.importer) == "render" and imp.imported in MODULES
           and part_of(imp.imported) not in CORE
           and not any(imp.imported == allowed or imp.imported.startswith(allowed + ".")
                       for allowed in RENDER_MAY_SEE)]
    assert bad == []


def circles(imports: list[Import]) -> list[list[str]]:
    """Strongly connected groups of modules (Tarjan) over the imports that run."""
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for imp in imports:
        if imp.imported in MODULES and not imp.type_only and imp.imported != imp.importer:
            graph[imp.importer].add(imp.imported)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _is_package_parent(importer: str, imported: str) -> bool:
    # ``import ckptdiff.a.b`` runs ``ckptdiff/a/__init__.py``; a package's own __init__ importing
    # one of its modules is not a circle with that module importing a sibling.
    return importer.startswith(imported + ".")


def _is_display(imp: Import) -> bool:
    # A display method's renderer is imported when the method runs, long after both modules
    # are loaded: the one lazy import that may point back up (see DISPLAY_METHODS).
    return imp.function in DISPLAY_METHODS and part_of(imp.imported) == "render"


def test_no_import_circles() -> None:
    runtime = [imp for imp in INTERNAL
               if not _is_package_parent(imp.importer, imp.imported) and not _is_display(imp)]
    assert circles(runtime) == []


def test_no_framework_import_at_module_top() -> None:
    bad = [str(imp) for imp in ALL_IMPORTS
           if imp.at_top and not imp.type_only and imp.imported.split(".")[0] in FRAMEWORKS]
    assert bad == []


def test_readers_never_import_torch_tensorflow_keras_or_transformers() -> None:
    bad = [str(imp) for imp in ALL_IMPORTS
           if part_of(imp.importer) == "readers" and not imp.type_only
           and imp.imported.split(".")[0] in ("torch", "tensorflow", "keras", "transformers")]
    assert bad == []


def test_every_package_says_what_it_is_for_and_may_import() -> None:
    for init in sorted(SRC.rglob("__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
        assert len(doc.split()) >= 12, f"{init.relative_to(SRC.parent)}: docstring too thin"
        if init.parent != SRC and init.parent.parent == SRC:
            assert "import" in doc, f"{init.relative_to(SRC.parent)}: say what it may import"


# The checks must be able to fail: each is run on a made-up import that breaks its rule.
def _fake(importer: str, imported: str, *, at_top: bool = True,
          function: str | None = None) -> Import:
    return Import(importer, imported, 1, at_top, False, function)


@pytest.mark.parametrize(("importer", "imported"), [
    ("ckptdiff.manifest", "ckptdiff.render.text"),
    ("ckptdiff.readers.torch.zip", "ckptdiff.diffing.match"),
    ("ckptdiff.rename.plan", "ckptdiff.diffing.report"),
])
def test_an_upward_import_would_fail(importer: str, imported: str) -> None:
    assert importer in MODULES and imported in MODULES
    (message,) = layer_violations([_fake(importer, imported)])
    assert importer in message and imported in message


def test_a_display_method_may_import_its_renderer() -> None:
    imp = _fake("ckptdiff.manifest", "ckptdiff.render.html_notebook", at_top=False,
                function="_repr_html_")
    assert layer_violations([imp]) == []


def test_a_circle_would_fail() -> None:
    made_up = [_fake("ckptdiff.api", "ckptdiff.fix.loading"),
               _fake("ckptdiff.fix.loading", "ckptdiff.api", at_top=False, function="load")]
    assert ["ckptdiff.api", "ckptdiff.fix.loading"] in circles(made_up)
