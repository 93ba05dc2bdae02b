"""The house rule, checked on the source: each room imports only rooms on lower floors, there is
no import circle, and nothing but ``pipeline_registry.py`` imports ``pipelines/``.

Read with :mod:`ast` from ``src/handwriting_pipeline`` and ``benchmarks/`` (no module is
imported). Every import counts, also one inside a function; only imports under
``if TYPE_CHECKING:`` do not (they are never run).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "handwriting_pipeline"
BENCHMARKS = ROOT / "benchmarks"

#: floor of every room, from the ground up: a room may import only rooms on a lower floor
#: (and itself). A room is a sub-package or a top-level module of ``handwriting_pipeline``.
FLOORS: dict[str, int] = {
    # 0: field rules, typed-settings base, the method registry (names only), errors
    "fields": 0, "config": 0, "registry": 0, "errors": 0, "selection": 0,
    # 1: form geometry, shared training pieces, prediction tables, synthetic forms, scores, the cost model,
    # the risk-controlling confidence threshold
    "forms": 1, "training": 1, "predictions": 1, "synthetic": 1, "metrics": 1, "cost": 1, "trust": 1,
    # 2: recorded outputs, the field reader, the evaluation's and the curation's settings
    "recorded_csv": 2, "fieldreader": 2, "evaluation": 2, "curation": 2,
    # 3: Donut (its text-line encoder is built on the field reader)
    "donut": 3,
    # 4: Kedro datasets (load the trained models)
    "datasets": 4,
    # 5: engines, ensembles, the scoring command
    "engines": 5, "ensemble": 5, "score": 5,
    # 6: a method choice -> ready engines with their inputs and calibration
    "methods": 6,
    # 7: digitize as a library; review of a digitize run folder (reads its files, imports no digitize code)
    "digitize": 7, "review": 7,
    # 8: Kedro pipelines (nodes) and the project hooks
    "pipelines": 8, "hooks": 8,
    # 9: Kedro's entry points
    "pipeline_registry": 9, "settings": 9, "__main__": 9,
    # 10: benchmark scripts
    "benchmarks": 10,
}

#: the only rooms that may import ``pipelines``
IMPORTS_PIPELINES = {"pipeline_registry", "pipelines"}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST, module: str, is_package: bool) -> list[tuple[str, int]]:
    """(imported module name, line) of every import that runs (``if TYPE_CHECKING:`` skipped)."""
    out: list[tuple[str, int]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            out.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".")
                parts = parts if is_package else parts[:-1]
                parts = parts[:len(parts) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            # `from pkg import sub` is an arrow to the module pkg.sub; `from mod import name` one to mod
            out.extend((f"{base}.{alias.name}", node.lineno) for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return out


def _modules() -> dict[str, Path]:
    """Dotted module name -> file, for the package and the benchmark scripts."""
    mods = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = path
    for path in sorted(BENCHMARKS.rglob("*.py")):  # benchmarks/common.py and benchmarks/<subject>/<script>.py
        mods[".".join(("benchmarks", *path.relative_to(BENCHMARKS).with_suffix("").parts))] = path
    return mods


def _room(module: str) -> str:
    parts = module.split(".")
    return "benchmarks" if parts[0] == "benchmarks" else (parts[1] if len(parts) > 1 else "")


def _graph() -> dict[str, dict[str, int]]:
    """module -> {imported project module: line}."""
    mods = _modules()
    stems = {name.rpartition(".")[2]: name for name in mods if name.startswith("benchmarks.")}
    graph: dict[str, dict[str, int]] = {}
    for name, path in mods.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        edges: dict[str, int] = {}
        for target, line in _imports(tree, name, path.name == "__init__.py"):
            if name.startswith("benchmarks.") and target.split(".")[0] in stems:
                target = stems[target.split(".")[0]]  # benchmarks/ and the subject folders are on sys.path
            while target and target not in mods:  # `from pkg import name` -> pkg
                target = target.rpartition(".")[0]
            if target and target != name and target != "handwriting_pipeline":
                edges.setdefault(target, line)
        graph[name] = edges
    return graph


GRAPH = _graph()


def test_every_room_has_a_floor() -> None:
    rooms = {_room(m) for m in GRAPH} - {""}
    assert not rooms - set(FLOORS), f"rooms without a floor in FLOORS: {sorted(rooms - set(FLOORS))}"


def test_rooms_import_only_rooms_below() -> None:
    wrong = []
    for module, edges in GRAPH.items():
        room = _room(module)
        for target, line in edges.items():
            other = _room(target)
            if other != room and FLOORS.get(other, 99) >= FLOORS.get(room, -1):
                wrong.append(f"{module}:{line} imports {target} ({other}, floor {FLOORS.get(other)} "
                             f">= {room}'s {FLOORS.get(room)})")
    assert not wrong, "imports that run up or across:\n" + "\n".join(wrong)


def test_only_the_registry_imports_pipelines() -> None:
    wrong = [f"{m}:{line} imports {t}" for m, edges in GRAPH.items() for t, line in edges.items()
             if _room(t) == "pipelines" and _room(m) not in IMPORTS_PIPELINES]
    assert not wrong, "\n".join(wrong)


def test_no_import_circles() -> None:
    """No strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def strongconnect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH.get(v, {}):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in GRAPH:
        if v not in index:
            strongconnect(v)
    assert not circles, f"import circles: {circles}"


@pytest.mark.parametrize("room", sorted(set(FLOORS) - {"benchmarks"}))
def test_room_docstring_says_what_it_may_import(room: str) -> None:
    """Each room opens with what lives there and what it may import (its floor)."""
    path = PACKAGE / room / "__init__.py" if (PACKAGE / room).is_dir() else PACKAGE / f"{room}.py"
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    assert "May import" in doc, f"{path}: the docstring should say what the room may import ('May import: ...')"
    assert f"Floor {FLOORS[room]}" in doc, f"{path}: the docstring should name its floor ('Floor {FLOORS[room]}')"
