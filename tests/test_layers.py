"""gaia_cli is one house of layers: every import points down (or within its layer), none up, and the packages
import one another without a cycle.

Every module under gaia_cli is parsed (not imported), and every import counts: at module level, inside a
function (the lazy imports that keep `gaia --help` fast), under `if TYPE_CHECKING:`. A top-level module
(`errors.py`) or package (`engine/`) is one node; `from gaia_cli import console` is an import of `console`,
`from gaia_cli import __version__` of the package's own `__init__`.

Only the command modules (`cli/`) import gaia_cli lazily; every other module imports it at module level, so
that a cycle or an upward import shows when the module is imported, not when a function first runs.
"""

from __future__ import annotations

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1] / "gaia_cli"

# bottom to top; a node may import its own layer and any layer below
LAYERS: list[list[str]] = [
    ["__init__", "errors"],  # the package's root (its version) and the errors everything raises
    ["artifacts", "checks", "devices"],  # typed files, option checks, --device
    ["console"],  # the only writer (it writes files through artifacts' atomic write)
    ["interrupts"],  # SIGINT/SIGTERM handling (it tells the user through console)
    ["labels", "space"],  # pure types without torch: label spaces; search spaces, archs, FLOPs, pruning record
    ["data"],  # datasets
    ["nn"],  # the networks and their weight files
    ["engine"],  # machinery only: loop, batches, distributed, schedules, checkpoints, recipes, metrics
    ["montage", "latency"],
    ["pathfilter"],
    ["search", "tasks"],  # tasks: the commands' workflows (train-supernet, finetune, pretrain, eval, predict)
    ["ranking", "selection", "export", "describe"],
    ["cli"],
    ["__main__"],
]
LAYER = {name: i for i, names in enumerate(LAYERS) for name in names}


def _node(path: pathlib.Path) -> str:
    """The top-level module or package a file belongs to."""
    rel = path.relative_to(ROOT)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _module(path: pathlib.Path) -> list[str]:
    """The dotted name of a file's module, as parts (a package's __init__ is the package)."""
    parts = ["gaia_cli", *path.relative_to(ROOT).with_suffix("").parts]
    return parts[:-1] if parts[-1] == "__init__" else parts


def _target(dotted: str) -> str | None:
    """The node an absolute module name (or `gaia_cli.<name>`) lands in; None outside gaia_cli."""
    parts = dotted.split(".")
    if parts[0] != "gaia_cli":
        return None
    if len(parts) == 1:
        return "__init__"
    name = parts[1]
    return name if (ROOT / name).is_dir() or (ROOT / f"{name}.py").is_file() else "__init__"


def _imported(node: ast.AST, path: pathlib.Path) -> list[str]:
    """The absolute module names an AST node imports (none if it is no import)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom):
        if node.level:  # relative: from the file's package, `level` - 1 packages up
            module = _module(path)
            package = module if path.name == "__init__.py" else module[:-1]
            base = package[: len(package) - node.level + 1]
            source = ".".join(base + ([node.module] if node.module else []))
        else:
            source = node.module or ""
        # `from gaia_cli import console` imports the module console; `from gaia_cli.x import y`, x
        return [f"{source}.{a.name}" for a in node.names] if source == "gaia_cli" else [source]
    if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) \
            == "import_module" and node.args and isinstance(node.args[0], ast.Constant) \
            and isinstance(node.args[0].value, str):
        return [node.args[0].value]
    return []


def imports() -> list[tuple[str, str, int, str, str]]:
    """(importing node, file, line, imported name, imported node) for every import of gaia_cli."""
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        here = _node(path)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            for name in _imported(node, path):
                target = _target(name)
                if target is not None and target != here:
                    found.append((here, str(path.relative_to(ROOT.parent)), node.lineno, name, target))
    return found


def test_every_module_has_a_layer():
    nodes = {_node(p) for p in ROOT.rglob("*.py")}
    assert sorted(nodes - set(LAYER)) == [], "place each new top-level module or package in LAYERS"
    assert sorted(set(LAYER) - nodes) == [], "LAYERS names modules that are gone"


def test_no_import_goes_up_a_layer():
    upward = [f"{file}:{line}: {here} (layer {LAYER[here]}) imports {name} (layer {LAYER[target]})"
              for here, file, line, name, target in imports()
              if here in LAYER and target in LAYER and LAYER[target] > LAYER[here]]
    assert upward == [], "imports up the layers:\n" + "\n".join(upward)


def test_only_the_command_modules_import_gaia_lazily():
    # a lazy import hides a cycle or an upward import until the function runs; cli/ keeps its own lazy (so
    # that `gaia --help` imports no torch), everything below imports gaia_cli at module level
    lazy = []
    for path in sorted(ROOT.rglob("*.py")):
        if _node(path) == "cli":
            continue
        functions = [n for n in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path)))
                     if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))]
        places = {(node.lineno, name) for function in functions for node in ast.walk(function)
                  for name in _imported(node, path) if _target(name) is not None}
        lazy += [f"{path.relative_to(ROOT.parent)}:{line}: imports {name} inside a function"
                 for line, name in sorted(places)]
    assert lazy == [], f"{len(lazy)} lazy import(s) of gaia_cli outside cli/ (move them to module level):\n" \
        + "\n".join(lazy)


def test_the_packages_import_one_another_without_a_cycle():
    graph: dict[str, set[str]] = {}
    for here, _, _, _, target in imports():
        graph.setdefault(here, set()).add(target)
    cycles = _strongly_connected(graph)
    assert cycles == [], "packages that import one another round a cycle: " + "; ".join(
        "{" + ", ".join(c) + "}" for c in cycles)


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """The components of more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
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

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)
