"""One way to the terminal: every line artkit prints goes through the consoles here. They never read Rich markup
in what they print (``markup=False``), so a class named ``[/]``, a path ``r[/x]`` or ``Rembrandt [workshop]``
prints as itself. Styles are artkit's own: :func:`show` and :func:`styled` take a constant markup template
and insert user text into its ``{}`` fields literally; a table cell is plain text, or :func:`styled`.
``tests/architecture/test_console.py`` fails when code under ``src/`` prints around them.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.text import Text

console = Console(highlight=False, markup=False, emoji=False)
err_console = Console(stderr=True, highlight=False, markup=False, emoji=False)
_BACKSLASH = "\ue000"  # stands in for a backslash of user text, which escape() would double before a field's end


def styled(template: str, *values: object) -> Text:
    """``template`` (artkit's markup, e.g. ``"[bold green]wrote[/] {}"``) with ``values`` put in as plain text."""
    text = Text.from_markup(template.format(*(escape(str(v).replace("\\", _BACKSLASH)) for v in values)), emoji=False)
    text.plain = text.plain.replace(_BACKSLASH, "\\")  # one character for one: the styles' spans still fit
    return text


def show(template: str, *values: object, err: bool = False, **print_options: Any) -> None:
    """Print :func:`styled` (``template``, ``values``) on stdout, or stderr with ``err=True``."""
    (err_console if err else console).print(styled(template, *values), **print_options)
