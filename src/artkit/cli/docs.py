"""Generated docs: ``python -m artkit.cli.docs docs/options.md`` (every option, from the option dataclasses) and
``python -m artkit.cli.docs docs/architecture.md`` (its module table, from each module's docstring)."""

from __future__ import annotations

from artkit.cli.commands import options_markdown


def options_doc() -> str:
    """docs/options.md: every command's options, generated from the config dataclasses the commands register."""
    import artkit.cli  # noqa: F401 - registers every command
    from artkit.cli.commands import COMMANDS

    head = (
        "# Options\n\nEvery option of every command, with its default and meaning. This page is generated from the "
        "option dataclasses (`python -m artkit.cli.docs docs/options.md`), the same source as `--help`, "
        "`--config` files and each run's `config.yaml`; a test keeps it current.\n\n"
    )
    return head + "\n".join(options_markdown(cls, f"artkit {name}") for name, cls in COMMANDS.items())


MODULES_START, MODULES_END = "<!-- modules: generated -->", "<!-- modules: end -->"


def modules_table() -> str:
    """A markdown table of every module under ``artkit/`` and the first line of its docstring."""
    import ast
    import re
    from pathlib import Path

    from artkit.reader import read_text

    root = Path(__file__).resolve().parents[1]
    rows = ["| module | its job |", "|---|---|"]
    for path in sorted(root.rglob("*.py")):
        doc = ast.get_docstring(ast.parse(read_text(path, "module"))) or ""
        first = re.split(r"(?<=\.)\s", " ".join(doc.split("\n\n")[0].split()), maxsplit=1)[0].replace("|", "\\|")
        rows.append(f"| `{path.relative_to(root.parent).as_posix()}` | {first} |")
    return "\n".join(rows)


def architecture_doc(current: str) -> str:
    """docs/architecture.md with its module table regenerated between the markers."""
    head, rest = current.split(MODULES_START, 1)
    tail = rest.split(MODULES_END, 1)[1]
    return f"{head}{MODULES_START}\n{modules_table()}\n{MODULES_END}{tail}"


if __name__ == "__main__":
    import sys

    from artkit.reader import read_text
    from artkit.writer import write_text

    target = sys.argv[1]
    write_text(target, architecture_doc(read_text(target)) if target.endswith("architecture.md") else options_doc())
