"""The layer contract (issue #13, docs/adr/0038-plugins-findings-layers.md), read from the source by ``ast``.

- SQLAlchemy only in ``store/``; rich and click only in ``cli/``; FastAPI and Starlette only in ``web/``;
- ``core/`` is pure: no other dataward package (but :mod:`dataward.errors`), no I/O module, only the
  numeric and cryptographic libraries;
- no import cycle between packages, and no function-level import whose only job is to break a cycle.

Today's violators are explicit allow-lists named after issue #13. They may only shrink: a NEW violator
fails, and so does an entry that no longer violates (delete it from the list when you fix one).
Imports under ``if TYPE_CHECKING:`` are type-only and do not count.
"""

from __future__ import annotations

import ast
import collections
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # the imported module (a dataward module, or a third-party top-level name)
    function_level: bool  # inside a function (or class body), i.e. not run at import time


@cache
def modules() -> dict[str, Path]:
    """Every dataward module: dotted name -> path."""
    out: dict[str, Path] = {}
    for path in sorted((SRC / "dataward").rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(stmts: list[ast.stmt], top: bool) -> Iterator[tuple[ast.stmt, bool]]:
    """Every statement with whether it runs at import time; skips ``if TYPE_CHECKING:`` bodies."""
    for s in stmts:
        yield s, top
        if isinstance(s, ast.If):
            if _is_type_checking(s):
                yield from _walk(s.orelse, top)
                continue
            yield from _walk(s.body, top)
            yield from _walk(s.orelse, top)
        elif isinstance(s, ast.Try):
            for block in (s.body, s.orelse, s.finalbody, *[h.body for h in s.handlers]):
                yield from _walk(block, top)
        elif isinstance(s, ast.With | ast.For | ast.While):
            yield from _walk(s.body, top)
            yield from _walk(getattr(s, "orelse", []), top)
        elif isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            yield from _walk(s.body, False)


def _targets(node: ast.stmt, mods: dict[str, Path]) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        out = []
        for alias in node.names:
            full = f"{node.module}.{alias.name}"
            out.append(full if full in mods else node.module)
        return out
    return []


@cache
def imports() -> tuple[Import, ...]:
    """Every import statement of every dataward module (type-only imports left out)."""
    mods = modules()
    out: list[Import] = []
    for name, path in mods.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for stmt, top in _walk(tree.body, True):
            for target in _targets(stmt, mods):
                if target.startswith("dataward"):
                    if target in mods and target != name:
                        out.append(Import(name, target, not top))
                else:
                    out.append(Import(name, target.split(".")[0], not top))
    return tuple(out)


def package(module: str) -> str:
    """The layer a module belongs to: ``dataward.X`` (a subpackage or a top-level module)."""
    return ".".join(module.split(".")[:2])


def _check(found: set[str], allowed: frozenset[str], what: str) -> None:
    new = sorted(found - allowed)
    stale = sorted(allowed - found)
    assert not new, f"{what}: new violation(s) {new} (issue #13: do not add; move the code to its layer)"
    assert not stale, f"{what}: {stale} no longer violate(s); remove them from the allow-list (it only shrinks)"


# ----------------------------------------------------------------------------------------- boundaries

#: issue #13: modules outside store/ that still speak SQLAlchemy (move their queries into store/)
SQLALCHEMY_OUTSIDE_STORE: frozenset[str] = frozenset()
#: issue #13: library modules that still draw rich progress bars or tables (progress belongs to cli/)
RICH_OUTSIDE_CLI: frozenset[str] = frozenset()

BOUNDARIES = [
    ("sqlalchemy", ("dataward.store",), SQLALCHEMY_OUTSIDE_STORE),
    ("rich", ("dataward.cli",), RICH_OUTSIDE_CLI),
    ("click", ("dataward.cli",), frozenset()),
    ("fastapi", ("dataward.web",), frozenset()),
    ("starlette", ("dataward.web",), frozenset()),
]


@pytest.mark.parametrize(("library", "home", "allowed"), BOUNDARIES, ids=[b[0] for b in BOUNDARIES])
def test_library_stays_in_its_layer(library: str, home: tuple[str, ...], allowed: frozenset[str]) -> None:
    found = {
        i.module
        for i in imports()
        if i.target == library and not any(i.module == h or i.module.startswith(h + ".") for h in home)
    }
    _check(found, allowed, f"{library} outside {', '.join(home)}")


#: third-party libraries core/ may use: numeric and cryptographic, no I/O
CORE_LIBRARIES = frozenset({"numpy", "scipy", "cryptography", "nacl"})
#: standard-library modules core/ may use (pure computation; ``os`` only for environment switches)
CORE_STDLIB = frozenset(
    {
        "__future__",
        "abc",
        "base64",
        "binascii",
        "collections",
        "dataclasses",
        "enum",
        "functools",
        "hashlib",
        "hmac",
        "json",
        "math",
        "os",
        "re",
        "struct",
        "types",
        "typing",
    }
)


def test_core_is_pure() -> None:
    bad = set()
    for i in imports():
        if not i.module.startswith("dataward.core"):
            continue
        if i.target.startswith("dataward"):
            if not (i.target.startswith("dataward.core") or i.target == "dataward.errors"):
                bad.add(f"{i.module} -> {i.target}")
        elif i.target not in CORE_LIBRARIES | CORE_STDLIB:
            bad.add(f"{i.module} -> {i.target}")
    assert not bad, f"core/ must stay pure (no I/O, no other layer): {sorted(bad)}"


#: what core/ may read through os: environment switches and the CPU count (no file, socket or process I/O)
_OS_ALLOWED = ("environ", "getenv", "cpu_count", "sched_getaffinity")


def test_core_uses_os_only_for_the_environment() -> None:
    for name, path in modules().items():
        if not name.startswith("dataward.core"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "os":
                assert node.attr in _OS_ALLOWED, f"{name} uses os.{node.attr}: core/ does no I/O"
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id != "open", f"{name} opens a file: core/ does no I/O"


#: the state layer (docs/adr/0040-state-layer-and-domain-model.md): what it holds, and what it may import
STATE_LAYER = frozenset(
    {"dataward.workspace", "dataward.sources", "dataward.principals", "dataward.batches", "dataward.lifecycle"}
)
#: below the state layer: storage, values, and the pure identity and access rules it shares a band with
STATE_MAY_IMPORT = (
    "dataward.store",
    "dataward.model",
    "dataward.core",
    "dataward.errors",
    "dataward.timeutil",
    "dataward.identity",
    "dataward.access",
)
#: issue #13: state modules that still reach up into the log and evidence layers (Workspace.change appends
#: to the log and authorizes against the replayed log; principals' self-service key rotation appends too)
STATE_UPWARD_IMPORTS_ALLOWED = frozenset(
    {
        "dataward.principals -> dataward.log.auditlog",
        "dataward.workspace -> dataward.evidence.load",
        "dataward.workspace -> dataward.log.auditlog",
    }
)


def test_state_layer_imports_only_store_model_and_core() -> None:
    below = (*STATE_MAY_IMPORT, *STATE_LAYER)
    found = {
        f"{i.module} -> {i.target}"
        for i in imports()
        if package(i.module) in STATE_LAYER
        and i.target.startswith("dataward")
        and not any(i.target == b or i.target.startswith(b + ".") for b in below)
    }
    _check(found, STATE_UPWARD_IMPORTS_ALLOWED, "state layer importing above itself")


# ------------------------------------------------------------------------------------------------ cycles


def package_graph(*, include_function_level: bool = True) -> dict[str, set[str]]:
    """Edges between layers (``dataward.X``); the root package's lazy re-exports are left out."""
    graph: dict[str, set[str]] = collections.defaultdict(set)
    for i in imports():
        if not i.target.startswith("dataward") or (i.function_level and not include_function_level):
            continue
        a, b = package(i.module), package(i.target)
        if a != b and "dataward" not in (a, b):
            graph[a].add(b)
    return graph


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's strongly connected components with more than one member (the cycles)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[set[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def cycle_edges(graph: dict[str, set[str]]) -> set[str]:
    """Edges ``a -> b`` that lie on a cycle (both ends in one strongly connected component)."""
    out = set()
    for comp in strongly_connected(graph):
        for a in comp:
            out |= {f"{a} -> {b}" for b in graph.get(a, ()) if b in comp}
    return out


def test_cycle_detection_finds_a_planted_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert strongly_connected(graph) == [{"a", "b", "c"}]
    assert cycle_edges(graph) == {"a -> b", "b -> c", "c -> a"}


#: issue #13: package edges that close a cycle (counting function-level imports too): none since ADR 0040;
#: a new one is a dependency to invert (a callback, a protocol in the lower layer, or the code moved up).
CYCLE_EDGES_ALLOWED: frozenset[str] = frozenset()


def test_no_new_cycle_between_packages() -> None:
    _check(cycle_edges(package_graph()), CYCLE_EDGES_ALLOWED, "package cycle edges")


def cycle_breaking_imports() -> set[str]:
    """Function-level imports ``m -> t`` where ``t`` imports ``m`` at import time (directly or not): moved
    to the top of ``m`` they would be an import cycle, so they exist only to break one."""
    mods = modules()
    at_import: dict[str, set[str]] = collections.defaultdict(set)
    for i in imports():
        if i.target.startswith("dataward") and not i.function_level:
            at_import[i.module].add(i.target)

    @cache
    def reach(start: str) -> frozenset[str]:
        seen: set[str] = set()
        todo = [start]
        while todo:
            v = todo.pop()
            parents = [".".join(v.split(".")[:k]) for k in range(2, len(v.split(".")))]
            for w in [*at_import.get(v, ()), *parents]:
                if w in mods and w not in seen:
                    seen.add(w)
                    todo.append(w)
        return frozenset(seen)

    return {
        f"{i.module} -> {i.target}"
        for i in imports()
        if i.function_level and i.target.startswith("dataward") and i.module in reach(i.target)
    }


#: issue #13: function-level imports that only break a cycle today
CYCLE_BREAKING_IMPORTS_ALLOWED: frozenset[str] = frozenset()


def test_no_new_function_level_import_that_breaks_a_cycle() -> None:
    _check(cycle_breaking_imports(), CYCLE_BREAKING_IMPORTS_ALLOWED, "cycle-breaking function-level imports")


def test_scanner_sees_function_level_and_type_only_imports(tmp_path: Path) -> None:
    code = (
        "from typing import TYPE_CHECKING\n"
        "import sqlalchemy\n"
        "if TYPE_CHECKING:\n    import rich\n"
        "def f():\n    import click\n"
    )
    tree = ast.parse(code)
    seen = {(t, not top) for s, top in _walk(tree.body, True) for t in _targets(s, {})}
    assert ("sqlalchemy", False) in seen and ("click", True) in seen and all(t != "rich" for t, _ in seen)
