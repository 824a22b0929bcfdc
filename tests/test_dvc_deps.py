"""dvc.yaml lists, for every stage, exactly the scripts and library modules the stage imports, so a code change
reruns exactly the stages it affects."""

import ast
import re
from pathlib import Path

import pytest
import yaml
from conftest import PROJECT


def _module_file(name: str, stages_dir: Path) -> Path | None:
    """The project file a module name refers to (nonspeech.* or a sibling module of the stage scripts)."""
    parts = name.split(".")
    candidates = [PROJECT.joinpath(*parts).with_suffix(".py"), PROJECT.joinpath(*parts, "__init__.py")]
    if len(parts) == 1:
        candidates.append(stages_dir / f"{name}.py")
    return next((c for c in candidates if c.is_file()), None)


def imported_files(script: Path) -> set[str]:
    """The script and every project module it imports, transitively, as repo-relative paths."""
    todo, seen = [script], set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            else:
                continue
            todo += [f for f in (_module_file(n, script.parent) for n in names) if f is not None]
    return {str(p.relative_to(PROJECT)) for p in seen if p.name != "__init__.py"}  # docstrings only: test_layout


def _stages() -> list[tuple[str, dict]]:
    stages = yaml.safe_load((PROJECT / "dvc.yaml").read_text())["stages"]
    return [(name, stage.get("do", stage)) for name, stage in stages.items()]


@pytest.mark.parametrize("name,stage", _stages(), ids=[name for name, _ in _stages()])
def test_code_deps_are_exactly_the_imports(name: str, stage: dict) -> None:
    script = PROJECT / re.search(r"stages/\w+\.py", stage["cmd"]).group(0)
    needed = imported_files(script)
    listed = {d for d in stage["deps"] if d.endswith(".py") or (PROJECT / d).is_dir() and d.startswith("nonspeech")}

    def covered(path: str) -> bool:
        return any(path == d or path.startswith(d.rstrip("/") + "/") for d in listed)

    assert sorted(p for p in needed if not covered(p)) == [], "imported but not in deps"
    assert sorted(d for d in listed if not any(p == d or p.startswith(d + "/") for p in needed)) == [], "in deps but not imported"
