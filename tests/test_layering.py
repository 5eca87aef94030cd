"""The layering of docs/architecture.md, enforced by walking every import.

One ordered list of layers, bottom to top: a module may import its own layer and the
layers below it, never one above. On top of that order: no import cycle anywhere (in
augsvc/ nor in the SDK), the engine's and the ops' modules are private to their
packages, and the frameworks that make a layer (HTTP, Redis) stay at and above it.

Imports inside functions count as much as those at the top: a rule is about what a
layer may know, not about when it learns it; and an import deferred into a function to
dodge a cycle is still the cycle.

Each check is a function of an import graph, so ``test_each_rule_can_fail`` can show it
firing on a small graph that breaks it.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "augsvc"
SDK_ROOT = ROOT / "clients" / "python"
SDK = SDK_ROOT / "augsvc_client"

Graph = Mapping[str, set[str]]

#: Bottom to top. Why each sits where it does is in docs/architecture.md.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("foundation", ("augsvc.errors", "augsvc.documents", "augsvc.allocator")),
    ("maths", ("augsvc.maths",)),
    ("ops", ("augsvc.ops",)),
    ("recipes", ("augsvc.recipes",)),
    ("engine", ("augsvc.engine",)),
    ("targets", ("augsvc.targets",)),
    ("codec", ("augsvc.codec",)),
    ("pipeline", ("augsvc.pipeline",)),
    ("datasets", ("augsvc.datasets",)),
    ("config", ("augsvc.config",)),
    ("store", ("augsvc.store",)),
    ("service", ("augsvc.service",)),
    ("api", ("augsvc.api",)),
    ("bench", ("augsvc.bench",)),
    ("cli", ("augsvc.cli",)),
]

#: Third-party packages that make a layer, and the lowest layer that may import them:
#: use cases know no HTTP, and nothing below the store knows Redis.
FRAMEWORKS = {
    "fastapi": "api",
    "starlette": "api",
    "uvicorn": "api",
    "python_multipart": "api",
    "redis": "store",
}

#: Packages whose modules are their own business: outside the package a module imports
#: the names its ``__init__`` exports, and these modules only.
PRIVATE_PACKAGES = {
    "augsvc.engine": (),
    # the parameter validators ops share with the recipe schema (output size, fill)
    "augsvc.ops": ("augsvc.ops.fields",),
}


def module_name(path: Path, base: Path = ROOT) -> str:
    parts = path.relative_to(base).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(dotted: str, base: Path) -> bool:
    """A .py file, a package, or a compiled extension (its C source or binary)."""
    path = base.joinpath(*dotted.split("."))
    return (
        path.with_suffix(".py").is_file()
        or (path / "__init__.py").is_file()
        or any(p.is_file() for p in path.parent.glob(path.name + ".*"))
    )


def imports_of(path: Path, base: Path = ROOT) -> set[str]:
    """Every module ``path`` imports, relative imports resolved. ``from p import x``
    imports module ``p.x`` when that is a module, else (a name) the module ``p``."""
    name = module_name(path, base)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{anchor}.{node.module}" if node.module else anchor
            else:
                module = node.module or ""
            for alias in node.names:
                sub = f"{module}.{alias.name}"
                found.add(sub if _is_module(sub, base) else module)
    return found


def graph_of(folder: Path, base: Path) -> dict[str, set[str]]:
    return {module_name(p, base): imports_of(p, base) for p in sorted(folder.rglob("*.py"))}


MODULES = graph_of(PACKAGE, ROOT)
SDK_MODULES = graph_of(SDK, SDK_ROOT)


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def layer_of(module: str) -> int | None:
    """The index of ``module``'s layer in LAYERS (the root package is the foundation)."""
    if module == "augsvc":
        return 0
    for index, (_, prefixes) in enumerate(LAYERS):
        if any(_within(module, p) for p in prefixes):
            return index
    return None


def unplaced(graph: Graph) -> list[str]:
    """Modules of augsvc that no layer holds: a new top-level module must choose one."""
    return sorted(m for m in graph if layer_of(m) is None)


def upward_imports(graph: Graph) -> list[tuple[str, str]]:
    """(importer, imported) where the imported module's layer is above the importer's."""
    found = []
    for module, imported in graph.items():
        own = layer_of(module)
        for target in imported:
            theirs = layer_of(target) if _within(target, "augsvc") else None
            if own is not None and theirs is not None and theirs > own:
                found.append((module, target))
    return sorted(found)


def framework_imports(graph: Graph) -> list[tuple[str, str]]:
    """(importer, framework) where the importer sits below the framework's lowest layer."""
    lowest = {fw: [n for n, _ in LAYERS].index(layer) for fw, layer in FRAMEWORKS.items()}
    found = []
    for module, imported in graph.items():
        own = layer_of(module)
        for target in imported:
            fw = target.split(".")[0]
            if fw in lowest and own is not None and own < lowest[fw]:
                found.append((module, target))
    return sorted(found)


def private_imports(graph: Graph) -> list[tuple[str, str]]:
    """(importer, module) where a module inside a private package is imported from
    outside it (other than a module the package shares on purpose)."""
    found = []
    for module, imported in graph.items():
        for package, shared in PRIVATE_PACKAGES.items():
            if _within(module, package):
                continue
            found += [
                (module, target)
                for target in imported
                if target.startswith(package + ".") and target not in shared
            ]
    return sorted(found)


def cycles(graph: Graph) -> list[list[str]]:
    """Every strongly connected set of two or more modules (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in graph:
                continue
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def test_every_module_has_a_layer():
    assert unplaced(MODULES) == []


def test_no_module_imports_a_layer_above_its_own():
    assert upward_imports(MODULES) == []


def test_frameworks_stay_in_the_layers_they_make():
    assert framework_imports(MODULES) == []


def test_the_engine_and_ops_modules_are_private_to_their_packages():
    """Outside augsvc/engine only what ``augsvc.engine`` exports is used (likewise for
    ops, plus the validators it shares): their modules can be split or merged freely."""
    assert private_imports(MODULES) == []


@pytest.mark.parametrize(("name", "graph"), [("augsvc", MODULES), ("augsvc_client", SDK_MODULES)])
def test_there_is_no_import_cycle(name: str, graph: Graph):
    assert cycles(graph) == [], f"import cycles in {name}"


def test_the_sdk_imports_no_server_code():
    offenders = {m: sorted(i for i in imported if _within(i, "augsvc")) for m, imported in
                 SDK_MODULES.items()}  # fmt: skip
    assert {m: bad for m, bad in offenders.items() if bad} == {}


def test_each_rule_can_fail():
    """A rule that could never fire would prove nothing: each fires on a graph that
    breaks it, and the walker resolves the imports the rules are about."""
    assert unplaced({"augsvc.newcomer": set()}) == ["augsvc.newcomer"]
    assert upward_imports({"augsvc.engine.run": {"augsvc.service.metrics"}}) == [
        ("augsvc.engine.run", "augsvc.service.metrics")
    ]
    assert framework_imports({"augsvc.service.x": {"fastapi.responses"}}) == [
        ("augsvc.service.x", "fastapi.responses")
    ]
    assert private_imports({"augsvc.api.x": {"augsvc.engine.run", "augsvc.engine"}}) == [
        ("augsvc.api.x", "augsvc.engine.run")
    ]
    assert private_imports(
        {"augsvc.recipes.x": {"augsvc.ops._composite", "augsvc.ops.fields"}}
    ) == [("augsvc.recipes.x", "augsvc.ops._composite")]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    # the walker: a function-level import counts, ``from package import module`` names
    # the module, and ``from package import name`` the package
    assert "augsvc.cli.serve" in MODULES["augsvc.cli"]  # imported inside a function
    assert "augsvc.engine" in MODULES["augsvc.targets.masks"]
    assert "augsvc.maths.geometry" in MODULES["augsvc.engine.plan"]
    assert any(_within(i, "fastapi") for i in MODULES["augsvc.api.app"])
