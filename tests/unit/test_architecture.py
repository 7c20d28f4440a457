"""The package's shape: no import cycles between immich_remote's modules.

Every `import` and `from ... import` counts, wherever it is: at the top of a module, inside a
function (a lazy import), or under `if TYPE_CHECKING:`. Relative imports are resolved; `from .x
import y` is an edge to the submodule `x.y` when that is a module, else to `x`.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

PACKAGE = "immich_remote"
ROOT = Path(__file__).resolve().parents[2] / PACKAGE


def module_files(root: Path = ROOT) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package (a package is its __init__.py)."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _base(module: str, path: Path, node: ast.ImportFrom) -> str:
    """The absolute name `from <this> import ...` refers to."""
    if node.level == 0:
        return node.module or ""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    anchor = package[: len(package) - (node.level - 1)]
    return ".".join(anchor + ([node.module] if node.module else []))


def imports_of(module: str, path: Path, modules: set[str]) -> set[str]:
    """The package's own modules that `module` imports, anywhere in its source."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                name = alias.name
                while name and name not in modules:  # `import a.b.c` of a plain attribute path
                    name = name.rpartition(".")[0]
                if name:
                    found.add(name)
        elif isinstance(node, ast.ImportFrom):
            base = _base(module, path, node)
            for alias in node.names:
                target = f"{base}.{alias.name}"
                if target in modules:
                    found.add(target)
                elif base in modules:
                    found.add(base)
    found.discard(module)
    return found


def import_graph() -> dict[str, set[str]]:
    files = module_files()
    return {name: imports_of(name, path, set(files)) for name, path in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a path [a, b, ..., a], or None (depth-first search, deterministic order)."""
    WHITE, GREY, BLACK = 0, 1, 2
    colour = dict.fromkeys(graph, WHITE)
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        colour[node] = GREY
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if colour.get(nxt, BLACK) == GREY:
                return stack[stack.index(nxt):] + [nxt]
            if colour.get(nxt) == WHITE and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        colour[node] = BLACK
        return None

    for start in sorted(graph):
        if colour[start] == WHITE and (cycle := visit(start)):
            return cycle
    return None


def test_the_graph_sees_every_kind_of_import():
    graph = import_graph()
    assert f"{PACKAGE}.cli" in graph and f"{PACKAGE}.commands.deploy" in graph
    assert f"{PACKAGE}.errors" in graph[f"{PACKAGE}.cli"]  # a top-level relative import
    assert any(m.startswith(f"{PACKAGE}.commands.") for m in graph[f"{PACKAGE}.cli"])  # registered commands


def test_find_cycle_reports_the_path():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_no_import_cycles():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_module_is_over_400_lines():
    """Small pieces a newcomer can read whole (issue 9): a module that grows past this is split."""
    sizes = {name: len(path.read_text().splitlines()) for name, path in module_files().items()}
    assert len(sizes) > 40
    large = {name: n for name, n in sizes.items() if n > 400}
    assert not large, f"modules over 400 lines: {large}"


def test_nothing_imports_the_cli_but_the_entry_point():
    cli = f"{PACKAGE}.cli"
    importers = sorted(m for m, targets in import_graph().items() if cli in targets and m != f"{PACKAGE}.__main__")
    assert not importers, f"{cli} is the entry point; imported by {importers}"


def test_loading_the_cli_imports_no_heavy_library():
    """`immich-remote --help` stays fast: the commands import what they use when they run."""
    heavy = ("httpx", "paramiko", "fabric", "jinja2", "pydantic", "rich", "yaml", "docker")
    code = ("import sys, immich_remote.cli; "
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({heavy!r})))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]", f"importing immich_remote.cli loads {loaded}"


def test_every_import_resolves_even_inside_functions():
    """Lazy imports (inside functions, under TYPE_CHECKING) run only when their command does; a name
    that moved would fail there first, on a real host. Check each one here."""
    files = module_files()
    missing = []
    for module, path in files.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.ImportFrom) or not _base(module, path, node).startswith(PACKAGE):
                continue
            base = importlib.import_module(_base(module, path, node))
            for alias in node.names:
                if not hasattr(base, alias.name) and f"{base.__name__}.{alias.name}" not in files:
                    missing.append(f"{module}:{node.lineno}: {base.__name__}.{alias.name}")
    assert not missing, "imports that do not resolve: " + ", ".join(missing)
