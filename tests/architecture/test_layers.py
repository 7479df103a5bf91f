"""The architecture as a test: no import cycles among artkit's modules, and imports only go down the layers
cli -> demo -> inference/qa -> engine/render -> data/models -> base (errors, reader, writer, options, ...).

Every import counts, also those inside functions (they run as soon as the function does).
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
# package (the first name below artkit; "" for the base modules) -> layer; higher layers import lower ones
LAYERS = {
    "": 0,
    "data": 1,
    "models": 1,
    "engine": 2,
    "render": 2,
    "inference": 3,
    "qa": 3,
    "demo": 4,
    "cli": 5,
    "__main__": 6,
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _runtime_nodes(tree: ast.AST, type_only: bool = False):
    """Every node except those under ``if TYPE_CHECKING:`` (imports for type hints only, never run); with
    ``type_only`` those too."""
    for node in ast.iter_child_nodes(tree):
        if not type_only and isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            continue
        yield node
        yield from _runtime_nodes(node, type_only)


def imports_of(path: Path, type_only: bool = False) -> set[str]:
    """artkit modules imported by ``path`` (``from artkit.x import y`` counts y when y is a module)."""
    modules = set()
    for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8")), type_only):
        if isinstance(node, ast.Import):
            modules |= {a.name for a in node.names if a.name.startswith("artkit")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("artkit"):
            modules.add(node.module)
            modules |= {f"{node.module}.{a.name}" for a in node.names}
    return modules


def graph(type_only: bool = False) -> dict[str, set[str]]:
    """module -> the artkit modules it imports (``type_only``: also under ``if TYPE_CHECKING:``)."""
    files = {module_name(p): p for p in (SRC / "artkit").rglob("*.py")}
    return {name: {m for m in imports_of(path, type_only) if m in files and m != name} for name, path in files.items()}


def find_cycles(edges: dict[str, set[str]]) -> list[str]:
    """Every import cycle a depth-first search meets, as ``a -> b -> a``."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(path[path.index(nxt) :] + [node, nxt]) if nxt in path else f"{node} -> {nxt}")
            elif nxt not in state:
                visit(nxt, [*path, node])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [])
    return cycles


def package(module: str) -> str:
    """``artkit.engine.trainer`` -> "engine"; the top-level modules are "" (base), except demo and __main__."""
    parts = module.split(".")
    if len(parts) == 1:
        return ""
    sub = parts[1]
    return sub if (SRC / "artkit" / sub).is_dir() or sub in ("demo", "__main__") else ""


def test_every_package_has_a_layer():
    for module in graph():
        assert package(module) in LAYERS, module


def test_imports_only_go_down_the_layers():
    wrong = []
    for module, targets in graph().items():
        here = package(module)
        for target in targets:
            there = package(target)
            if there != here and LAYERS[there] >= LAYERS[here]:
                wrong.append(f"{module} ({here or 'base'}) imports {target} ({there or 'base'})")
    assert not wrong, "\n".join(sorted(wrong))


def test_no_import_cycles():
    cycles = find_cycles(graph())
    assert not cycles, "\n".join(cycles)


def test_no_type_only_cycles():
    """Not even imports for type hints go round in a circle (they hide a dependency that runs both ways)."""
    cycles = find_cycles(graph(type_only=True))
    assert not cycles, "\n".join(cycles)


def test_the_checker_sees_a_cycle_and_an_upward_import(tmp_path: Path):
    """The checks above can fail: the same functions find a planted cycle and an upward import."""
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a -> b -> c -> a"]
    assert find_cycles({"a": {"b"}, "b": set()}) == []
    planted = tmp_path / "m.py"
    planted.write_text("def f():\n    from artkit.cli.app import app\n", encoding="utf-8")
    assert "artkit.cli.app" in imports_of(planted)
    hinted = tmp_path / "h.py"
    hinted.write_text("if TYPE_CHECKING:\n    from artkit.cli.app import app\n", encoding="utf-8")
    assert "artkit.cli.app" not in imports_of(hinted) and "artkit.cli.app" in imports_of(hinted, type_only=True)
    assert LAYERS[package("artkit.cli.app")] > LAYERS[package("artkit.engine.trainer")]


def test_docs_architecture_names_every_module():
    from artkit.cli.docs import architecture_doc

    doc = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"
    text = doc.read_text(encoding="utf-8")
    assert text == architecture_doc(text), "regenerate: python -m artkit.cli.docs docs/architecture.md"
    assert all(f"`artkit/{p.relative_to(SRC / 'artkit').as_posix()}`" in text for p in (SRC / "artkit").rglob("*.py"))


def test_no_line_is_over_120_characters():
    """ruff's limit, also for the lines its noqa comments let through."""
    root = SRC.parent
    long = [
        f"{path.relative_to(root)}:{n}"
        for folder in ("src", "tests", "bench")
        for path in (root / folder).rglob("*.py")
        if "_work" not in path.relative_to(root).parts  # bench/_work: git-ignored downloads, not artkit's code
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if len(line) > 120
    ]
    assert not long, long
