"""The dependency rule of docs/DESIGN: imports point one way, and nothing imports in a circle.

Every ``import x`` and ``from x import y`` of every ``.py`` file of the packages
below is read with :mod:`ast` (imports inside functions and ``TYPE_CHECKING``
blocks included, relative imports resolved) and checked against the tables at the
top of this file. ``from pkg import name`` counts as an import of ``pkg.name``
when that is a module of the project, else of ``pkg``. Modules loaded by name at
run time (``importlib``) are not seen. Each failure names the importing file, the
line and the rule broken.
"""
from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("main.py", "agents", "graphs", "datasets", "utils", "benchmarks")

# ----------------------------------------------------------------------------- the rules
#: Top-level layers, high to low (benchmarks drive the command line as a user would). A module imports only its own package or a lower rank,
#: so packages of equal rank (graphs, datasets) do not import each other.
LAYERS = {"benchmarks": 4, "main": 3, "agents": 2, "graphs": 1, "datasets": 1, "utils": 0}
#: utils subpackages, high to low; the same rule inside utils (runtime and metrics are equals).
UTILS_RANKS = {"utils.figures": 3, "utils.runs": 2, "utils.runtime": 1, "utils.metrics": 1, "utils.core": 0}
#: Inside graphs: the only parts of graphs each subpackage may import (its own included).
GRAPHS_MAY_IMPORT = {
    "graphs.models": ("graphs.models.contract", "graphs.kernels"),
    "graphs.kernels": ("graphs.kernels",),
    "graphs.losses": ("graphs.losses",),
}
#: Packages whose functions must not type a parameter ``agent`` as ``Any``.
TYPED_AGENT_PACKAGES = ("agents", "graphs", "datasets", "utils")
#: Packages whose functions must not take an ``agent`` parameter at all.
NO_AGENT_PACKAGES = ("utils",)


# ----------------------------------------------------------------------------- the parser
@dataclass(frozen=True)
class Import:
    """One imported project module: who imports it, where."""

    importer: str
    target: str
    path: str  # relative to the repository root
    line: int

    def where(self) -> str:
        return f"{self.path}:{self.line}: {self.importer} imports {self.target}"


@cache
def project_modules() -> dict[str, Path]:
    """``{dotted module name: file}`` of every module under :data:`SOURCES`."""
    modules = {}
    for source in SOURCES:
        files = [REPO_ROOT / source] if source.endswith(".py") else sorted((REPO_ROOT / source).rglob("*.py"))
        for file in files:
            parts = list(file.relative_to(REPO_ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = file
    return modules


def _relative(path: Path) -> str:
    return path.relative_to(REPO_ROOT).as_posix()


def _resolve(module: str, path: Path, node: ast.ImportFrom) -> str:
    """The absolute module name of ``from <node.module> import ...`` written in ``module``."""
    if not node.level:
        return node.module or ""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    parts = package.split(".")
    base = ".".join(parts[:len(parts) - node.level + 1])
    return f"{base}.{node.module}" if node.module else base


def _is_project(name: str) -> bool:
    return name.split(".")[0] in LAYERS


@cache
def all_imports() -> tuple[Import, ...]:
    """Every import of a project module by a project module, in file and line order."""
    modules = project_modules()
    found: list[Import] = []
    for module, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(module, path, node)
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            else:
                continue
            for target in dict.fromkeys(targets):
                if _is_project(target):
                    found.append(Import(module, target, _relative(path), node.lineno))
    return tuple(sorted(found, key=lambda i: (i.path, i.line, i.target)))


def _group(module: str, table: dict[str, object]) -> str | None:
    """The longest key of ``table`` that is ``module`` or a package above it."""
    keys = [k for k in table if module == k or module.startswith(k + ".")]
    return max(keys, key=len) if keys else None


def _check(violations: list[str]) -> None:
    """Fail with one line per violation (no traceback: the lines say where and why)."""
    if violations:
        pytest.fail(f"{len(violations)} violation(s):\n  " + "\n  ".join(violations), pytrace=False)


def _defined_names(body: list[ast.stmt]) -> Iterator[str]:
    """Names bound by the statements of a module body (if/try/with blocks included, not functions)."""
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            yield node.name
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            yield from ((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            yield from (n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
        elif isinstance(node, (ast.If, ast.Try, ast.With)):
            blocks = [node.body, getattr(node, "orelse", []), getattr(node, "finalbody", [])]
            blocks += [handler.body for handler in getattr(node, "handlers", [])]
            for block in blocks:
                yield from _defined_names(block)


@cache
def _top_level_names(module: str) -> frozenset[str] | None:
    """Names a module defines at its top level; None when it has a module ``__getattr__``."""
    names = frozenset(_defined_names(ast.parse(project_modules()[module].read_text(encoding="utf-8")).body))
    return None if "__getattr__" in names else names


# ----------------------------------------------------------------------------- the tests
def test_the_parser_sees_the_project():
    modules = project_modules()
    assert {"main", "agents.base", "graphs.models.contract", "utils.core.registry"} <= set(modules)
    targets = {(i.importer, i.target) for i in all_imports()}
    assert ("agents", "agents.base") in targets  # from agents import base
    assert ("graphs.kernels.rnn", "graphs.kernels.native") in targets
    assert ("graphs.losses", "utils.core.registry") in targets


def test_imports_name_existing_modules():
    """A project import that names no module is stale (a file was moved or removed)."""
    modules = project_modules()
    violations = [f"{i.where()}: no such module (rule: imports name existing project modules)"
                  for i in all_imports() if i.target not in modules]
    for module, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom) or (base := _resolve(module, path, node)) not in modules:
                continue
            defined = _top_level_names(base)
            for alias in node.names:
                if defined is not None and alias.name != "*" and alias.name not in defined \
                        and f"{base}.{alias.name}" not in modules:
                    violations.append(f"{_relative(path)}:{node.lineno}: {module} imports {alias.name} from "
                                      f"{base}, which neither defines it nor has such a submodule "
                                      "(rule: imports name existing project modules)")
    _check(sorted(violations))


def _rank_violations(table: dict[str, int], scope: str) -> Iterator[str]:
    for i in all_imports():
        source, target = _group(i.importer, table), _group(i.target, table)
        if source is None or target is None or source == target or table[target] < table[source]:
            continue
        lower = sorted((k for k in table if table[k] < table[source]), key=lambda k: -table[k])
        equal = " (equal ranks do not import each other)" if table[target] == table[source] else ""
        yield (f"{i.where()}: {scope} rule: {source} (rank {table[source]}) imports only itself or lower "
               f"({', '.join(lower) or 'nothing'}), and {target} has rank {table[target]}{equal}")


def test_layers_point_down():
    """main > benchmarks > agents > {graphs, datasets} > utils."""
    violations = list(_rank_violations(LAYERS, "layer"))
    _check(violations)


def test_utils_subpackages_point_down():
    """utils.core < utils.runtime, utils.metrics < utils.runs < utils.figures."""
    violations = list(_rank_violations(UTILS_RANKS, "utils"))
    _check(violations)


def test_graphs_subpackages_keep_apart():
    """models may import kernels and models.base; kernels and losses import no other part of graphs."""
    violations = []
    for i in all_imports():
        source = _group(i.importer, GRAPHS_MAY_IMPORT)
        if source is None or not i.target.startswith("graphs"):
            continue
        allowed = GRAPHS_MAY_IMPORT[source]
        if _group(i.target, dict.fromkeys(allowed)) is None:
            violations.append(f"{i.where()}: graphs rule: {source} may import only {', '.join(allowed)} "
                              "from graphs")
    _check(violations)


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    """Modules reachable from ``start`` by one or more imports."""
    seen: set[str] = set()
    frontier = set(graph[start])
    while frontier:
        seen |= frontier
        frontier = {child for node in frontier for child in graph[node]} - seen
    return seen


def _shortest_cycle(start: str, members: set[str], graph: dict[str, set[str]]) -> list[str]:
    """Shortest path start -> ... -> start inside one strongly connected component."""
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph[node] & members):
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if child not in parents:
                    parents[child] = node
                    following.append(child)
        frontier = following
    return [start]


def test_no_import_cycles():
    """No two modules import each other, directly or through others (cycles of length >= 2)."""
    graph: dict[str, set[str]] = {m: set() for m in project_modules()}
    lines: dict[tuple[str, str], Import] = {}
    for i in all_imports():
        if i.target in graph and i.target != i.importer:
            graph[i.importer].add(i.target)
            lines.setdefault((i.importer, i.target), i)
    reach = {module: _reachable(graph, module) for module in graph}
    knots = {frozenset(m for m in reach[module] if module in reach[m]) for module in graph if module in reach[module]}
    violations = []
    for component in sorted(sorted(knot) for knot in knots):
        cycle = _shortest_cycle(component[0], set(component), graph)
        steps = "; ".join(lines[(a, b)].where() for a, b in zip(cycle, cycle[1:]))
        violations.append(f"cycle rule: {' -> '.join(cycle)} ({steps})"
                          + (f"; other modules in this knot: {', '.join(sorted(set(component) - set(cycle)))}"
                             if set(component) - set(cycle) else ""))
    _check(violations)


def _names_any(annotation: ast.expr | None) -> bool:
    if annotation is None:
        return False
    for node in ast.walk(annotation):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):  # "Any" as a string
            try:
                if _names_any(ast.parse(node.value, mode="eval").body):
                    return True
            except SyntaxError:
                continue
        if (isinstance(node, ast.Name) and node.id == "Any") or (isinstance(node, ast.Attribute)
                                                                 and node.attr == "Any"):
            return True
    return False


def _parameters(tree: ast.AST) -> Iterator[tuple[str, ast.arg]]:
    """(function name, parameter) for every parameter of every function and lambda in ``tree``."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            a = node.args
            name = getattr(node, "name", "<lambda>")
            for arg in [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg]:
                if arg is not None:
                    yield name, arg


def test_the_agent_parameter_is_typed_and_stays_out_of_utils():
    violations = []
    for module, path in project_modules().items():
        package = module.split(".")[0]
        if package not in TYPED_AGENT_PACKAGES:
            continue
        parameters = sorted(_parameters(ast.parse(path.read_text(encoding="utf-8"))), key=lambda p: p[1].lineno)
        for function, arg in parameters:
            if arg.arg != "agent":
                continue
            where = f"{_relative(path)}:{arg.lineno}: parameter `agent` of {function}()"
            if package in NO_AGENT_PACKAGES:
                violations.append(f"{where}: agent rule: nothing in {package} takes the agent "
                                  "(pass the model, scaler or values it needs)")
            elif _names_any(arg.annotation):
                violations.append(f"{where} is typed Any: agent rule: name the agent's type")
    _check(violations)
