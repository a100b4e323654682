"""Imports go one way: `intake` never imports `loadtest`, and no two intake modules import each
other, directly or through others (lazy imports inside functions count too)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import networkx as nx

INTAKE = Path(__file__).resolve().parents[2] / "intake"


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, at any depth of its code."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def module_name(path: Path) -> str:
    parts = path.relative_to(INTAKE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def intake_graph() -> nx.DiGraph:
    modules = {module_name(p): p for p in INTAKE.rglob("*.py")}
    graph = nx.DiGraph()
    graph.add_nodes_from(modules)
    for name, path in modules.items():
        for target in imported_modules(path):
            if target in modules and target != name and modules[target].name != "__init__.py":
                graph.add_edge(name, target)
    return graph


def test_intake_never_imports_loadtest() -> None:
    offenders = {
        module_name(p): sorted(m for m in imported_modules(p) if m.split(".")[0] == "loadtest")
        for p in INTAKE.rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, intake.main, intake.bench, intake.fastpath; "
         "print(sorted(m for m in sys.modules if m.split('.')[0] == 'loadtest'))"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    assert loaded == "[]"


def test_no_import_cycles_in_intake() -> None:
    graph = intake_graph()
    assert graph.has_edge("intake.main", "intake.fastpath")
    assert list(nx.simple_cycles(graph)) == []
