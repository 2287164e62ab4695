"""The structure the layer contracts cannot see: no import cycles between packages, and imports
at the top of the module (a function-level import only for a heavy or optional third-party
dependency, with a comment on the line saying so)."""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("hotline", "web_console", "agi_scripts", "asterisk_conf", "dispatch", "sms", "callcenter")


def _unit(module: str) -> str:
    """The package a module belongs to: callcenter's domains count one by one."""
    parts = module.split(".")
    if parts[0] == "callcenter" and len(parts) > 2:
        return ".".join(parts[:2])
    return parts[0] if parts[0] != "callcenter" else module


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
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
                found.append(sorted(component))

    for v in list(edges):
        if v not in index:
            visit(v)
    return found


def test_no_package_cycles():
    graph = grimp.build_graph(*PACKAGES)
    edges: dict[str, set[str]] = defaultdict(set)
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            a, b = _unit(module), _unit(imported)
            if a != b:
                edges[a].add(b)
    assert _cycles(edges) == []


def _function_imports():
    stdlib = set(sys.stdlib_module_names)
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            source = path.read_text(encoding="utf-8")
            lines = source.splitlines()
            for fn in ast.walk(ast.parse(source)):
                if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                    continue
                for node in ast.walk(fn):
                    if isinstance(node, ast.Import):
                        names = [alias.name for alias in node.names]
                    elif isinstance(node, ast.ImportFrom):
                        names = [node.module or ""] if node.level == 0 else [package]
                    else:
                        continue
                    tops = {name.split(".")[0] for name in names}
                    yield path.relative_to(ROOT), node.lineno, _with_reason(lines, node.lineno), tops, stdlib


def _with_reason(lines: list[str], lineno: int) -> str:
    """The import line, with the comment that explains its block of imports (on a line of the
    block or the line just above it) appended."""
    line = lines[lineno - 1]
    first = lineno - 1
    while first > 0 and lines[first - 1].strip().startswith(("from ", "import ")):
        first -= 1
    block = lines[first:lineno]
    above = lines[first - 1].strip() if first > 0 else ""
    reasons = [part.split("#", 1)[1] for part in block if "#" in part]
    if above.startswith("#"):
        reasons.append(above[1:])
    return line.split("#", 1)[0].rstrip() + ("  # " + reasons[0].strip() if reasons else "")


def test_imports_inside_functions_only_for_heavy_optional_dependencies():
    wrong = []
    for path, lineno, line, tops, stdlib in _function_imports():
        if tops & set(PACKAGES):
            wrong.append(f"{path}:{lineno}: first-party import inside a function: {line.strip()}")
        elif tops <= stdlib:
            wrong.append(f"{path}:{lineno}: standard-library import inside a function: {line.strip()}")
        elif "#" not in line:
            wrong.append(f"{path}:{lineno}: say in a comment why this import waits: {line.strip()}")
    assert wrong == []
