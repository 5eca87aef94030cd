"""The layering rules of docs/architecture.md, enforced by walking every import.

Imports inside functions count as much as those at the top: a rule is about what a
layer may know, not about when it learns it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "augsvc"

HTTP_FRAMEWORKS = ("fastapi", "starlette", "uvicorn", "python_multipart")
OUTER_LAYERS = ("augsvc.api", "augsvc.service", "augsvc.cli", "augsvc.bench")

#: (layer, what it must not import, why)
RULES = [
    ("augsvc.engine", (*OUTER_LAYERS, "augsvc.store", "augsvc.datasets", *HTTP_FRAMEWORKS,
                       "redis"), "the engine is pure torch + Kornia"),
    ("augsvc.ops", (*OUTER_LAYERS, "augsvc.store", "augsvc.datasets", *HTTP_FRAMEWORKS,
                    "redis"), "ops are engine code: schema, sampler, matrix or kernel"),
    ("augsvc.targets", (*OUTER_LAYERS, "augsvc.store", "augsvc.datasets", *HTTP_FRAMEWORKS,
                        "redis"), "target maths is engine code"),
    ("augsvc.recipes", (*OUTER_LAYERS, "augsvc.store", "augsvc.datasets", *HTTP_FRAMEWORKS,
                        "redis"), "recipes are documents, not services"),
    ("augsvc.codec", (*OUTER_LAYERS, "augsvc.store", "augsvc.engine", *HTTP_FRAMEWORKS,
                      "redis"), "the codec is formats only"),
    ("augsvc.store", (*OUTER_LAYERS, "augsvc.engine", *HTTP_FRAMEWORKS),
     "the store keeps documents"),
    ("augsvc.datasets", (*OUTER_LAYERS, "augsvc.store", *HTTP_FRAMEWORKS, "redis"),
     "datasets read sources and render frames"),
    ("augsvc.service", ("augsvc.api", "augsvc.cli", *HTTP_FRAMEWORKS),
     "use cases know no HTTP"),
]  # fmt: skip


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports, relative imports resolved."""
    package = (
        module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" else module_name(path)
    )
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


MODULES = {module_name(p): imports_of(p) for p in sorted(PACKAGE.rglob("*.py"))}


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


@pytest.mark.parametrize(("layer", "forbidden", "why"), RULES, ids=[r[0] for r in RULES])
def test_layer_imports_nothing_it_must_not(layer: str, forbidden: tuple[str, ...], why: str):
    members = {m: imported for m, imported in MODULES.items() if _within(m, layer)}
    assert members, f"no modules in {layer}"
    offenders = {
        module: sorted(i for i in imported if any(_within(i, f) for f in forbidden))
        for module, imported in members.items()
    }
    assert {m: bad for m, bad in offenders.items() if bad} == {}, why


def test_api_uses_the_engine_and_ops_only_through_their_packages():
    """api/ speaks HTTP: it may name ``augsvc.engine`` or ``augsvc.ops`` (their public
    names), never a module inside them."""
    offenders = {
        module: sorted(
            i for i in imported
            if any(i.startswith(f"augsvc.{pkg}.") and i.count(".") >= 2
                   and not _public_name(pkg, i) for pkg in ("engine", "ops"))
        )
        for module, imported in MODULES.items()
        if _within(module, "augsvc.api")
    }  # fmt: skip
    assert {m: bad for m, bad in offenders.items() if bad} == {}


def _public_name(package: str, imported: str) -> bool:
    """``augsvc.engine.MAX_SEED`` (a name the package exports), not ``augsvc.engine.run``."""
    tail = imported.split(".", 2)[2]
    return "." not in tail and not (PACKAGE / package / f"{tail}.py").exists()


def test_the_sdk_imports_no_server_code():
    sdk = ROOT / "clients" / "python" / "augsvc_client"
    offenders = {
        str(p.relative_to(sdk)): sorted(i for i in imports_of(p) if _within(i, "augsvc"))
        for p in sdk.rglob("*.py")
    }
    assert {m: bad for m, bad in offenders.items() if bad} == {}


def test_the_rules_can_fail():
    """A rule that could never fire would prove nothing: the API does import FastAPI."""
    assert any(_within(i, "fastapi") for i in MODULES["augsvc.api.app"])
    assert any(_within(i, "augsvc.engine") for i in MODULES["augsvc.service.augment"])
