"""The architecture holds: layers import downwards only, modules stay small enough to read, no
module reaches into another's private names, tests and benchmarks share helpers through
`testkit` only.

Read from the source (every import statement, the ones inside functions too), so a lazy import
that climbs a layer fails here as surely as one at the top of a file.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

LAYERS = {
    # package: the packages of this repository it may import
    "imaging": set(),
    "calibration": {"imaging"},
    "models": set(),
    "vision": {"imaging", "calibration", "models"},
    "service": {"imaging", "calibration", "models", "vision"},
    "testkit": {"imaging", "calibration", "models", "vision", "service"},
    "tests": {"imaging", "calibration", "models", "vision", "service", "testkit"},
    "benchmarks": {"imaging", "calibration", "models", "vision", "service", "testkit"},
}
"""Who may import whom, bottom to top. `tests` and `benchmarks` never import each other."""

LIBRARY = ("imaging", "calibration", "vision")
"""Pure libraries: no web framework, database or service import."""
SERVICE_ONLY = ("fastapi", "starlette", "sqlalchemy", "alembic", "uvicorn", "jinja2")

MAX_LINES = 500
SIZE_CHECKED = ("imaging", "calibration", "vision", "service")


def _python_files(package: str) -> list[Path]:
    return sorted(p for p in (REPO / package).rglob("*.py") if "__pycache__" not in p.parts)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[str, list[str], int]]:
    """(module imported, names taken from it, line) for every import in `path`."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, [], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = _module_name(path).split(".")
                if path.name != "__init__.py":
                    base = base[:-1]
                base = base[:len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append((module, [alias.name for alias in node.names], node.lineno))
    return found


def _all_files() -> list[tuple[str, Path]]:
    return [(package, path) for package in LAYERS for path in _python_files(package)]


def test_layers_import_downwards_only():
    climbing = []
    for package, path in _all_files():
        for module, _, line in _imports(path):
            top = module.split(".")[0]
            if top in LAYERS and top != package and top not in LAYERS[package]:
                climbing.append(f"{path.relative_to(REPO)}:{line} imports {module}")
    assert not climbing, "imports that climb a layer:\n" + "\n".join(climbing)


def test_the_package_graph_has_no_cycle():
    graph = {package: set() for package in LAYERS}
    for package, path in _all_files():
        for module, _, _ in _imports(path):
            top = module.split(".")[0]
            if top in graph and top != package:
                graph[package].add(top)

    def cycle_from(start: str, node: str, seen: tuple[str, ...]) -> tuple[str, ...] | None:
        for nxt in graph[node]:
            if nxt == start:
                return (*seen, nxt)
            if nxt not in seen:
                found = cycle_from(start, nxt, (*seen, nxt))
                if found:
                    return found
        return None

    cycles = [cycle for package in graph if (cycle := cycle_from(package, package, (package,)))]
    assert not cycles, f"package import cycles: {cycles}"


def test_the_libraries_import_no_web_or_database_code():
    offending = [f"{path.relative_to(REPO)}:{line} imports {module}"
                 for package in LIBRARY for path in _python_files(package)
                 for module, _, line in _imports(path)
                 if module.split(".")[0] in SERVICE_ONLY]
    assert not offending, "\n".join(offending)


@pytest.mark.parametrize("package", SIZE_CHECKED)
def test_no_module_is_longer_than_500_lines(package):
    long = {str(p.relative_to(REPO)): n for p in _python_files(package)
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"split these into modules a reader can open alone: {long}"


def test_no_module_imports_another_modules_private_names():
    """Within the product, testkit and the benchmarks. (A test may look inside the module it
    tests: tests/ is left out.)"""
    private = []
    for package, path in _all_files():
        if package == "tests":
            continue
        for module, names, line in _imports(path):
            if module.split(".")[0] not in LAYERS:
                continue
            taken = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if taken:
                private.append(f"{path.relative_to(REPO)}:{line} from {module} import {taken}")
    assert not private, "private names taken across modules:\n" + "\n".join(private)


def test_no_test_module_imports_another():
    offending = [f"{path.relative_to(REPO)}:{line} imports {module}"
                 for path in _python_files("tests") for module, _, line in _imports(path)
                 if module.startswith("tests.") and module.split(".")[-1].startswith("test_")]
    assert not offending, "shared test code belongs in testkit or conftest:\n" + "\n".join(
        offending)


def test_public_names_that_others_import_are_in_all():
    """A module's ``__all__`` lists what other modules take from it (the names its readers
    should look at first)."""
    exported: dict[str, set[str] | None] = {}
    for _, path in _all_files():
        tree = ast.parse(path.read_text())
        names = None
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(
                    isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
                names = set(ast.literal_eval(node.value))
        exported[_module_name(path)] = names
    missing = []
    for package, path in _all_files():
        if package in ("tests", "benchmarks"):
            continue
        for module, names, line in _imports(path):
            listed = exported.get(module)
            if listed is None:
                continue
            for name in names:
                if name not in listed and f"{module}.{name}" not in exported:
                    missing.append(f"{path.relative_to(REPO)}:{line} takes {module}.{name}")
    assert not missing, "names used across modules but not in __all__:\n" + "\n".join(missing)
