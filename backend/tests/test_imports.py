"""Imports run one way: data <- model <- eval <- registry <- service, store beside model; no cycles.

``app.simulate`` is a command on top of everything: it may import the packages below the service but
talks to the service over HTTP, as any client would, so it never imports ``app.service`` or a web framework.

The test reads every module of ``backend/app`` (AST, imports inside functions too, since a lazy import
is a dependency all the same) and fails on an import against the order, an import cycle, or a
serving-core module that imports the web framework.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[1] / "app"

#: A package may import its own modules and those of packages with a lower number; equal numbers are
#: peers that never import each other (the model and the store know nothing of one another).
LAYERS = {
    "config": 0,
    "files": 0,
    "data": 1,
    "model": 2,
    "store": 2,
    "eval": 3,
    "registry": 4,
    "service": 5,
    "simulate": 6,
}
#: Inside the service, the same rule between its parts: the core knows nothing of HTTP.
SERVICE_LAYERS = {"core": 0, "http": 1, "api": 2}
WEB_FRAMEWORKS = ("fastapi", "starlette", "uvicorn")


def module_name(path: Path) -> str:
    parts = path.relative_to(APP.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(APP.rglob("*.py"))}


def imports(path: Path) -> list[tuple[str, int]]:
    """(imported module, line) for every import in the file; ``from a import b`` is ``a.b`` when b is a module."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                out.append((sub if sub in MODULES else base, node.lineno))
    return out


def layer_of(module: str) -> tuple[str, int] | None:
    parts = module.split(".")
    if parts[0] != "app" or len(parts) < 2:
        return None
    return parts[1], LAYERS[parts[1]]


def service_part(module: str) -> str | None:
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and parts[:2] == ["app", "service"] else None


def test_every_package_has_a_layer():
    assert {layer_of(m)[0] for m in MODULES if layer_of(m)} <= set(LAYERS)


def test_imports_follow_the_layers():
    wrong = []
    for module, path in MODULES.items():
        here = layer_of(module)
        if here is None:
            continue
        for target, line in imports(path):
            there = layer_of(target)
            if there is None or there[0] == here[0]:
                continue
            if there[1] >= here[1]:
                wrong.append(f"{path.relative_to(APP.parent)}:{line}: {module} imports {target}")
    assert not wrong, "imports against data <- model/store <- eval <- registry <- service:\n" + "\n".join(wrong)


def test_the_serving_core_knows_nothing_of_http():
    wrong = []
    for module, path in MODULES.items():
        part = service_part(module)
        if part is None:
            continue
        for target, line in imports(path):
            other = service_part(target)
            if other is not None and other != part and SERVICE_LAYERS[other] >= SERVICE_LAYERS[part]:
                wrong.append(f"{path.relative_to(APP.parent)}:{line}: {module} imports {target}")
            if part == "core" and target.split(".")[0] in WEB_FRAMEWORKS:
                wrong.append(f"{path.relative_to(APP.parent)}:{line}: the serving core imports {target}")
    assert not wrong, "\n".join(wrong)


def test_the_simulation_talks_to_the_service_over_http():
    wrong = []
    for module, path in MODULES.items():
        if layer_of(module) is None or layer_of(module)[0] != "simulate":
            continue
        for target, line in imports(path):
            if target.split(".")[:2] == ["app", "service"] or target.split(".")[0] in WEB_FRAMEWORKS:
                wrong.append(f"{path.relative_to(APP.parent)}:{line}: {module} imports {target}")
    assert not wrong, "the simulation must use the service over HTTP only:\n" + "\n".join(wrong)


def test_there_is_no_import_cycle():
    graph = {m: {t for t, _ in imports(p) if t in MODULES and t != m} for m, p in MODULES.items()}
    done: set[str] = set()
    path: list[str] = []

    def visit(m: str) -> None:
        if m in path:
            cycle = [*path[path.index(m) :], m]
            pytest.fail("import cycle: " + " -> ".join(cycle))
        if m in done:
            return
        path.append(m)
        for t in sorted(graph[m]):
            visit(t)
        path.pop()
        done.add(m)

    for m in sorted(graph):
        visit(m)


def test_the_checks_catch_what_they_are_for(tmp_path):
    """The walker sees a lazy import inside a function and resolves ``from package import module``."""
    f = APP / "model" / "_probe_for_the_import_test.py"
    try:
        f.write_text("def f():\n    from app.eval import metrics\n    import app.service.core.runtime\n")
        MODULES[module_name(f)] = f
        found = {t for t, _ in imports(f)}
        assert found == {"app.eval.metrics", "app.service.core.runtime"}
        with pytest.raises(AssertionError, match=r"app\.model\._probe_for_the_import_test imports app\.eval\.metrics"):
            test_imports_follow_the_layers()
    finally:
        MODULES.pop(module_name(f), None)
        f.unlink(missing_ok=True)
