"""The packages import downwards only: core → search_space → hardware → dataset_builder → predictors → controller
→ pipeline → CLI, with no cycle between them and no import under an old top-level name."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("core", "search_space", "hardware", "dataset_builder", "predictors", "controller", "pipeline", "cli")
FOLDERS = {"core": ROOT / "narch" / "core", **{p: ROOT / p for p in LAYERS[1:-1]}}
OLD_ROOTS = set(LAYERS[1:-1])


def _layer_of_module(name: str) -> str | None:
    """The layer of an imported module name (``narch.X...``), None for modules outside the project."""
    parts = name.split(".")
    if parts[0] != "narch":
        return None
    if len(parts) > 1 and parts[1] in FOLDERS:
        return parts[1]
    return "cli"  # narch itself and its command-line modules


def _files() -> dict[Path, str]:
    """Every module of the package with the layer it belongs to."""
    out = {}
    for layer, folder in FOLDERS.items():
        for f in folder.rglob("*.py"):
            out[f] = layer
    for f in (ROOT / "narch").rglob("*.py"):
        if FOLDERS["core"] not in f.parents:
            out[f] = "cli"
    return out


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every absolute import in a file, including those inside functions."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{a.name}") for a in node.names if node.module == "narch"]
    return found


def test_every_import_goes_down_the_layers() -> None:
    rank = {name: i for i, name in enumerate(LAYERS)}
    bad = []
    for path, layer in _files().items():
        for line, mod in _imports(path):
            if mod.split(".")[0] in OLD_ROOTS:
                bad.append(f"{path.relative_to(ROOT)}:{line}: imports {mod} (use narch.{mod})")
                continue
            target = _layer_of_module(mod)
            if target is not None and rank[target] > rank[layer]:
                bad.append(f"{path.relative_to(ROOT)}:{line}: {layer} imports {mod} ({target} is above it)")
    assert not bad, "upward imports:\n" + "\n".join(sorted(bad))


def test_no_cycle_between_modules() -> None:
    """No two modules import each other, directly or through others, even through imports inside functions
    (a lazy import hides a cycle from Python, not from the design)."""
    files = _files()
    name_of = {}
    for path in files:
        rel = path.relative_to(ROOT).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        name_of[path] = ".".join(parts if parts[0] == "narch" else ["narch", *parts])
    modules = set(name_of.values())
    graph: dict[str, set[str]] = {}
    for path, mod in name_of.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            deps |= {n for n in names if n in modules and n != mod}
        graph[mod] = deps
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for d in sorted(graph[m]):
            if state.get(d) == 1:
                cycles.append(" -> ".join([*stack[stack.index(d):], d]))
            elif d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)
