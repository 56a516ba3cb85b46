"""Relay's own modules must not import each other in a circle.

The graph is built from the source with `ast` (nothing is imported): every `import relay.x`, `from relay.x import y`
and relative import inside relay/, with `from relay.pkg import module` resolved to the module when it is one. Imports
under `if TYPE_CHECKING:` never run, so they are kept in a separate graph: a cycle that goes through one of them is
allowed only when the module it imports is listed in TYPE_CHECKING_CYCLE_TARGETS below.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "relay"

# The modules that `if TYPE_CHECKING:` imports (annotations only, never executed) may close a cycle through, and why.
# Listed by the imported module, not by the cycle's members, so a new endpoint annotating `relay: Relay` does not
# change the list; a new kind of cycle does (and so does removing this one: the list must stay exact).
TYPE_CHECKING_CYCLE_TARGETS: dict[str, str] = {
    # `Relay` (the app: config, store, router, channels, tallies, ...) is the first argument of every endpoint and
    # admin view, which relay.routes gathers and relay.app serves. Endpoints only read its attributes; a Protocol
    # restating them all would be a second copy of the class to keep in step.
    "relay.app": "the Relay type in endpoint, admin view and route signatures",
}

Graph = dict[str, set[str]]


def module_names(root: Path) -> dict[str, Path]:
    """Every module under relay/, by dotted name (a package is named for its __init__.py)."""
    names: dict[str, Path] = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _imports(tree: ast.Module) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement with whether it sits under `if TYPE_CHECKING:` (its else branch runs)."""

    def walk(nodes: list[ast.stmt], guarded: bool) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
        for node in nodes:
            if isinstance(node, ast.Import | ast.ImportFrom):
                yield node, guarded
            elif isinstance(node, ast.If) and _is_type_checking(node.test):
                yield from walk(node.body, True)
                yield from walk(node.orelse, guarded)
            else:
                for child in ast.iter_child_nodes(node):
                    if isinstance(child, ast.stmt):
                        yield from walk([child], guarded)
                    elif isinstance(child, ast.excepthandler):
                        yield from walk(child.body, guarded)

    yield from walk(tree.body, False)


def _base(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    parts = module.split(".")
    if not is_package:
        parts.pop()
    if node.level > 1:
        parts = parts[: len(parts) - (node.level - 1)]
    return ".".join(parts + ([node.module] if node.module else []))


def targets(module: str, path: Path, node: ast.Import | ast.ImportFrom, known: set[str]) -> set[str]:
    """The relay modules one import statement loads (the named module, or for `from pkg import m` the submodule)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = _base(module, path.name == "__init__.py", node)
        names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
    found: set[str] = set()
    for name in names:
        while name and name not in known:
            name = name.rpartition(".")[0]
        if name and name != module:
            found.add(name)
    return found


def build_graphs(root: Path) -> tuple[Graph, Graph]:
    """(runtime graph, TYPE_CHECKING-only graph) of relay's modules."""
    modules = module_names(root)
    known = set(modules)
    runtime: Graph = {name: set() for name in modules}
    typing_only: Graph = {name: set() for name in modules}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node, guarded in _imports(tree):
            (typing_only if guarded else runtime)[module] |= targets(module, path, node, known)
    return runtime, typing_only


def cycles(graph: Graph) -> set[tuple[str, ...]]:
    """Every strongly connected group of more than one module (or a module importing itself), as a sorted tuple."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: set[tuple[str, ...]] = set()
    counter = 0

    def visit(start: str) -> None:
        nonlocal counter
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1 or node in graph.get(node, ()):
                    found.add(tuple(sorted(group)))

    for name in sorted(graph):
        if name not in index:
            visit(name)
    return found


def _merged(first: Graph, second: Graph) -> Graph:
    return {name: first.get(name, set()) | second.get(name, set()) for name in first.keys() | second.keys()}


def without_imports_of(graph: Graph, targets_: set[str]) -> Graph:
    return {name: edges - targets_ for name, edges in graph.items()}


def unlisted_cycles(runtime: Graph, typing_only: Graph, listed: set[str]) -> set[tuple[str, ...]]:
    """The cycles of all imports but the TYPE_CHECKING imports of a ``listed`` module."""
    return cycles(_merged(runtime, without_imports_of(typing_only, listed)))


@pytest.fixture(scope="module")
def graphs() -> tuple[Graph, Graph]:
    return build_graphs(ROOT)


def test_graph_sees_relay_imports(graphs: tuple[Graph, Graph]) -> None:
    runtime, _ = graphs
    assert "relay.app" in runtime
    assert "relay.routes" in runtime["relay.app"]
    assert "relay.endpoints.failover" in runtime["relay.endpoints.forward"]  # `from .failover import ...`


def test_no_runtime_import_cycle(graphs: tuple[Graph, Graph]) -> None:
    runtime, _ = graphs
    assert cycles(runtime) == set()


def test_type_checking_cycles_are_the_listed_ones(graphs: tuple[Graph, Graph]) -> None:
    runtime, typing_only = graphs
    listed = set(TYPE_CHECKING_CYCLE_TARGETS)
    assert unlisted_cycles(runtime, typing_only, listed) == set()
    assert {target for target in listed if not unlisted_cycles(runtime, typing_only, listed - {target})} == set()


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_detects_an_added_cycle_in_every_import_form(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "relay/__init__.py": "",
            "relay/a.py": "import relay.pkg.b\n",
            "relay/pkg/__init__.py": "",
            "relay/pkg/b.py": "from . import c\n",
            "relay/pkg/c.py": "from ..d import thing\n",
            "relay/d.py": "from relay import a\nthing = 1\n",
            "relay/e.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from relay.f import x\n",
            "relay/f.py": "try:\n    from relay.e import y\nexcept ImportError:\n    pass\n",
        },
    )
    runtime, typing_only = build_graphs(tmp_path)
    assert cycles(runtime) == {("relay.a", "relay.d", "relay.pkg.b", "relay.pkg.c")}
    assert cycles(_merged(runtime, typing_only)) == {
        ("relay.a", "relay.d", "relay.pkg.b", "relay.pkg.c"),
        ("relay.e", "relay.f"),
    }
    assert unlisted_cycles(runtime, typing_only, {"relay.f"}) == cycles(runtime)  # only the runtime one is left
    broken = without_imports_of(runtime, {"relay.a"})  # the runtime cycle cut where relay.d imports relay.a
    assert cycles(_merged(broken, without_imports_of(typing_only, {"relay.f"}))) == set()
