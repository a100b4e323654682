"""The design's one-way dependencies, checked on every module's imports (top level and inside
functions alike): the model knows nothing of the service or the load tests, its layers import
only the layers below them, no two modules import each other (directly or around a loop), and
no module grows past 600 lines."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[2]

# package -> packages it must never import
FORBIDDEN = {
    "twin": ("intake", "loadtest", "twin_cli"),
    "twin.city": ("twin.model", "twin.experiments", "twin.reports"),
    "twin.model": ("twin.experiments", "twin.reports"),
    "twin.experiments": ("twin.reports",),
    "intake": ("loadtest", "twin_cli"),
    "loadtest": ("twin_cli",),
}
MAX_LINES = 600


def modules() -> list[tuple[str, Path]]:
    found = []
    for top in ("twin", "twin_cli", "intake", "loadtest"):
        for path in sorted((ROOT / top).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found.append((name, path))
    return found


def imported(path: Path, module: str) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the importing package
                base = module.split(".")[: -node.level] if node.level else []
                names.add(".".join([*base, node.module or ""]).strip("."))
            elif node.module:
                names.add(node.module)
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


@pytest.mark.parametrize(("module", "path"), modules(), ids=[m for m, _ in modules()])
def test_imports_run_one_way(module: str, path: Path) -> None:
    imports = imported(path, module)
    for package, forbidden in FORBIDDEN.items():
        if not within(module, package):
            continue
        bad = sorted(i for i in imports for f in forbidden if within(i, f))
        assert not bad, f"{module} ({package}) must not import {bad}"


def test_the_check_can_fail(tmp_path: Path) -> None:
    """A negative control: a model module importing the service is caught."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from intake.store import create_api_key\n")
    assert "intake.store" in imported(bad, "twin.model.bad")


def import_graph() -> nx.DiGraph:
    """Module -> project modules it imports (a package's ``__init__`` re-exports aside)."""
    found = dict(modules())
    graph = nx.DiGraph()
    graph.add_nodes_from(found)
    for name, path in found.items():
        for target in imported(path, name):
            if target in found and target != name and found[target].name != "__init__.py":
                graph.add_edge(name, target)
    return graph


def test_no_import_cycles() -> None:
    graph = import_graph()
    assert graph.has_edge("intake.main", "intake.writer")  # the graph sees real imports
    assert list(nx.simple_cycles(graph)) == []


def test_intake_loads_no_load_test_code() -> None:
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, intake.main, intake.bench, intake.fastpath; "
         "print(sorted(m for m in sys.modules if m.split('.')[0] in ('loadtest', 'twin_cli')))"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    assert loaded == "[]"


@pytest.mark.parametrize(("module", "path"), modules(), ids=[m for m, _ in modules()])
def test_no_module_is_over_600_lines(module: str, path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{module}: {lines} lines; split it by concern"
