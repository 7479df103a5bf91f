"""Printing as a test: artkit reaches the terminal only through :mod:`artkit.cli.console`, whose consoles read no
Rich markup, so user text (a class named ``[/]``, a path ``r[/x]``) prints as itself and never crashes Rich.

The rules, over every module under ``src/artkit/``:

(a) no ``Console(`` but the two in ``artkit/cli/console.py``;
(b) no call passes ``markup=True`` (a Rich ``TextColumn`` that shows user text passes ``markup=False``);
(c) ``show(`` and ``styled(`` take a constant template: user text goes in as a value, never into the markup
    (``console.py``, which defines them, passes its caller's template on);
(d) ``Text.from_markup(`` only on constant text, outside ``console.py``;
(e) only ``artkit/cli/`` imports rich: the core never prints;
(f) no string given to a ``.print(``, a table's ``add_row(`` or its title holds markup such as ``[/]``: with
    ``markup=False`` it would print as is.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
CONSOLE_MODULE = "artkit/cli/console.py"
CLI_PACKAGE = "artkit/cli/"
TEMPLATE_FUNCTIONS = {"show", "styled"}
PRINTING = {"print", "add_row", "Table"}  # what puts text on the terminal: a print, a table cell or title


def _name(func: ast.expr) -> str | None:
    """``f`` for ``f(...)`` and ``a.b.f(...)``."""
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _is_str_constant(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _literal_text(node: ast.expr) -> str:
    """The constant text in an expression (strings, f-strings, ``+`` and ``a if c else b`` of them), not looking
    into calls (``styled("[bold]x[/]")`` is how markup is meant to arrive)."""
    if isinstance(node, ast.Call):
        return ""
    if _is_str_constant(node):
        return node.value
    return " ".join(_literal_text(child) for child in ast.iter_child_nodes(node) if isinstance(child, ast.expr))


def _imports_rich(node: ast.AST) -> bool:
    if isinstance(node, ast.Import):
        return any(a.name == "rich" or a.name.startswith("rich.") for a in node.names)
    if isinstance(node, ast.ImportFrom):
        module = node.module or ""
        return node.level == 0 and (module == "rich" or module.startswith("rich."))
    return False


def violations(rel: str, source: str) -> list[str]:
    """What breaks the rules in the module at ``rel`` (a path below ``src/``, e.g. ``artkit/cli/app.py``)."""
    in_console = rel == CONSOLE_MODULE
    in_cli = rel.startswith(CLI_PACKAGE)
    found = []

    def bad(node: ast.AST, why: str) -> None:
        found.append(f"src/{rel}:{node.lineno}: {why}")

    for node in ast.walk(ast.parse(source, filename=rel)):
        if _imports_rich(node) and not in_cli:
            bad(node, "imports rich outside artkit/cli/ (the core never prints; return data, the CLI shows it)")
        if not isinstance(node, ast.Call):
            continue
        name = _name(node.func)
        if name == "Console" and not in_console:
            bad(node, "constructs a Console; print through artkit.cli.console (console, err_console, show)")
        for kw in node.keywords:
            if kw.arg == "markup" and isinstance(kw.value, ast.Constant) and kw.value.value is True:
                bad(node, "passes markup=True; user text would be read as Rich markup (use show/styled)")
        if name in TEMPLATE_FUNCTIONS and not in_console and (not node.args or not _is_str_constant(node.args[0])):
            bad(node, f"{name}() needs a constant template as its first argument; pass user text as values")
        if name == "from_markup" and not in_console and (not node.args or not _is_str_constant(node.args[0])):
            bad(node, "Text.from_markup() on text that is not a constant; use styled(template, *values)")
        shown = [*node.args, *(kw.value for kw in node.keywords if kw.arg in ("title", "caption"))]
        if name in PRINTING and any("[/" in _literal_text(arg) for arg in shown):
            bad(node, "prints markup through a console that reads none; use show() or a styled() cell")
    return found


def _modules() -> list[Path]:
    return sorted((SRC / "artkit").rglob("*.py"))


def test_the_rules_hold_in_every_module():
    assert _modules(), f"no modules found under {SRC / 'artkit'}"
    found = [v for path in _modules() for v in violations(path.relative_to(SRC).as_posix(), path.read_text("utf-8"))]
    assert not found, "printing around artkit.cli.console:\n" + "\n".join(found)


@pytest.mark.parametrize(
    ("rel", "source", "expected"),
    [
        ("artkit/cli/app.py", "from rich.console import Console\nc = Console()\n", "constructs a Console"),
        ("artkit/cli/app.py", "import rich.console\nc = rich.console.Console(stderr=True)\n", "constructs a Console"),
        ("artkit/cli/app.py", "console.print(x, markup=True)\n", "markup=True"),
        ("artkit/cli/progress.py", "TextColumn(f'  {what}', markup=True)\n", "markup=True"),
        ("artkit/cli/app.py", "show(f'[bold]wrote[/] {path}')\n", "show() needs a constant template"),
        ("artkit/cli/app.py", "show(template, path)\n", "show() needs a constant template"),
        ("artkit/cli/app.py", "show()\n", "show() needs a constant template"),
        ("artkit/cli/app.py", "styled('[bold]' + name + '[/]')\n", "styled() needs a constant template"),
        ("artkit/cli/runs.py", "t = Text.from_markup(f'[{c}]{status}[/]')\n", "Text.from_markup()"),
        ("artkit/cli/runs.py", "t = Text.from_markup(text=status)\n", "Text.from_markup()"),
        ("artkit/engine/train_command.py", "from rich.progress import Progress\n", "imports rich"),
        ("artkit/qa/eda.py", "import rich\n", "imports rich"),
        ("artkit/cli/eda.py", "console.print(f'[bold green]report[/]: {path}')\n", "prints markup"),
        ("artkit/cli/eda.py", "err_console.print('[dim]' + note + '[/]')\n", "prints markup"),
        ("artkit/cli/progress.py", "console.print(line + ('  [green]best[/]' if improved else ''))\n", "prints markup"),
        ("artkit/cli/runs.py", "table.add_row(r.name, f'[{colour}]{r.status}[/]')\n", "prints markup"),
        ("artkit/cli/runs.py", "table = Table(title=f'[bold]runs[/] under {folder}')\n", "prints markup"),
    ],
)
def test_each_rule_catches_what_it_is_for(rel: str, source: str, expected: str):
    found = violations(rel, source)
    assert any(expected in v for v in found), found
    assert all(v.startswith(f"src/{rel}:") for v in found)  # file:line, to jump to


@pytest.mark.parametrize(
    ("rel", "source"),
    [
        ("artkit/cli/console.py", "console = Console(highlight=False, markup=False)\n"),
        ("artkit/cli/console.py", "Text.from_markup(template.format(*values))\n"),
        ("artkit/cli/console.py", "console.print(styled(template, *values))\n"),
        ("artkit/cli/app.py", "show('[bold red]error:[/] {}', text, err=True, soft_wrap=True)\n"),
        ("artkit/cli/progress.py", "console.print(styled('{}  [green]best[/]', line) if improved else line)\n"),
        ("artkit/cli/runs.py", "table.add_row(r.name, styled('[green]{}[/]', r.status), f'{score:.4f}')\n"),
        ("artkit/cli/runs.py", "t = Text.from_markup('[green]finished[/]')\n"),
        ("artkit/cli/progress.py", "TextColumn('  {task.description}', markup=False)\n"),
        ("artkit/cli/progress.py", "from rich.progress import Progress\nconsole.print(f'  {text}')\n"),
        ("artkit/engine/train_command.py", "from artkit.progress import Reporter\nprint('[x]')\n"),
    ],
)
def test_what_the_rules_allow(rel: str, source: str):
    assert violations(rel, source) == []


def test_styled_puts_user_text_in_literally():
    from artkit.cli.console import styled

    text = styled("[bold]x[/] {}", "[/] Rembrandt [workshop]")
    assert text.plain == "x [/] Rembrandt [workshop]"
    assert any(span.style == "bold" for span in text.spans)  # the template's own markup still styles


def test_a_path_with_markup_in_an_error_prints_as_itself(tmp_path: Path):
    from typer.testing import CliRunner

    import artkit.cli  # noqa: F401 - registers the commands on the app
    from artkit.cli.app import app

    checkpoint = tmp_path / "no[/]such [bold]run" / "best.pt"
    result = CliRunner().invoke(app, ["predict", str(checkpoint), str(tmp_path)])
    assert result.exit_code == 2, result.output + repr(result.exception)
    assert str(checkpoint) in result.output
    assert "error:" in result.output
