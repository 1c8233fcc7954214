"""``tsattn.data`` has no import cycle, neither at module level nor inside functions."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import tsattn.data

PACKAGE = Path(tsattn.data.__file__).parent
MODULES = sorted(path.stem for path in PACKAGE.glob("*.py"))  # "__init__" included
ROOT = PACKAGE.parents[1]


def _data_imports(module: str) -> set[str]:
    """The ``tsattn.data`` modules that ``module`` imports anywhere in its body."""
    found: set[str] = set()
    for node in ast.walk(ast.parse((PACKAGE / f"{module}.py").read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = node.module
            if node.level:  # relative: from .x import y
                base = "tsattn.data" + (f".{node.module}" if node.module else "")
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if name == "tsattn.data":
                found.add("__init__")
            elif name.startswith("tsattn.data.") and name.split(".")[2] in MODULES:
                found.add(name.split(".")[2])
    found.discard(module)
    return found


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path of module names, or ``None``."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (found := visit(target)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_cycle_finder_finds_a_planted_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_data_modules_import_each_other_without_a_cycle():
    graph = {module: _data_imports(module) for module in MODULES}
    assert graph["loader"] >= {"download"}  # the reader sees the imports it should
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_every_data_module_imports_first_in_a_fresh_interpreter():
    script = (
        "import importlib, sys\n"
        f"for name in {[m for m in MODULES if m != '__init__']!r}:\n"
        "    for key in [k for k in sys.modules if k.startswith('tsattn')]:\n"
        "        del sys.modules[key]\n"
        "    importlib.import_module('tsattn.data.' + name)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
