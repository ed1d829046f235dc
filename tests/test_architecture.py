"""The package's shape, as docs/architecture.md draws it: layers import downward only, no
import cycle between modules, no source file over 400 lines."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "avloc"
# bottom to top: a layer may import only the layers before it (docs/architecture.md)
LAYERS = ("util", "config", "extract", "data", "model", "losses", "checkpoint", "runs",
          "scoring", "train", "report", "infer", "view", "demo", "cli", "__main__")


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    """Every module of avloc -> the avloc modules it imports (any import statement, type
    checking ones too), resolved to the deepest module that exists."""
    mods = {module_name(p): p for p in SRC.rglob("*.py")}

    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [f"{node.module}.{a.name}" for a in node.names]
                targets = [resolve(n) if n in mods else resolve(node.module) for n in names]
            elif isinstance(node, ast.Import):
                targets = [resolve(a.name) for a in node.names]
            else:
                continue
            graph[m] |= {t for t in targets if t and t.startswith("avloc") and t != m}
    return graph


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_layers_import_downward_only():
    upward = [(m, t) for m, targets in imports().items() for t in targets
              if layer(t) != "__init__" and layer(m) != layer(t)
              and LAYERS.index(layer(t)) > LAYERS.index(layer(m))]
    assert upward == []
    assert {layer(m) for m in imports()} <= {*LAYERS, "__init__"}  # every folder has a layer


def test_no_import_cycle_between_modules():
    graph, state, cycles = imports(), {}, []

    def visit(m: str, path: list[str]) -> None:
        state[m] = "open"
        for t in sorted(graph[m]):
            if state.get(t) == "open":
                cycles.append(path[path.index(t):] + [t] if t in path else [m, t])
            elif t not in state:
                visit(t, [*path, t])
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert cycles == []


def test_no_source_file_over_400_lines():
    long = {str(p.relative_to(SRC)): n for p in SRC.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 400}
    assert long == {}
