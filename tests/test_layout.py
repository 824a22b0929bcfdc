"""The package's shape: subpackages by phase, small modules, dependencies that point one way (no import cycle,
lazy imports included), package __init__ files that hold only a docstring, and no `except ImportError`."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import PROJECT

PACKAGE = PROJECT / "nonspeech"
MODULES = sorted(PACKAGE.rglob("*.py"))


def module_name(path: Path) -> str:
    """nonspeech.x.y of a file in the package (a package's __init__ is the package)."""
    parts = path.relative_to(PROJECT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """The project modules a file imports anywhere in it (functions included), resolved to module names."""
    known = {module_name(p) for p in MODULES}
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        else:
            continue
        found |= {name for name in names if name in known and name != "nonspeech" and not name.endswith("__init__")}
    return {name for name in found if not (PACKAGE / Path(*name.split(".")[1:]) / "__init__.py").exists()}


def test_no_import_cycle() -> None:
    graph = {module_name(p): imported_modules(p) for p in MODULES}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            assert state.get(nxt) != 1, "import cycle: " + " -> ".join([*trail, node, nxt])
            if nxt not in state:
                visit(nxt, [*trail, node])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [])


def test_at_most_ten_top_level_modules_and_none_over_300_lines() -> None:
    assert len(list(PACKAGE.glob("*.py"))) <= 10
    long = {str(p.relative_to(PROJECT)): n for p in MODULES if (n := len(p.read_text().splitlines())) > 300}
    assert long == {}


def test_package_init_files_hold_only_a_docstring() -> None:
    for path in PACKAGE.rglob("__init__.py"):
        body = ast.parse(path.read_text()).body
        assert all(isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) for node in body), path


def test_no_import_error_is_swallowed() -> None:
    """An optional dependency is looked up with importlib.util.find_spec, so a broken install fails loudly."""
    for path in MODULES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ExceptHandler) and node.type is not None:
                assert "ImportError" not in ast.unparse(node.type), f"{path}:{node.lineno}"


def test_library_reads_no_params_file_or_environment() -> None:
    """Config flows params.yaml -> stage entry point -> plain arguments."""
    for path in MODULES:
        text = path.read_text()
        assert "params.yaml\")" not in text and "os.environ" not in text and "getenv" not in text, path
