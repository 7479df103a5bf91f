"""The ``artkit`` command line: thin Typer commands over the core.

``app`` lives in :mod:`artkit.cli.app`; importing the command modules here registers them on it, so the
commands and the app never import each other.
"""

from artkit.cli import clean, demo, eda, ensemble, eval, explain, models, predict, runs, train, weights  # noqa: F401 - registers commands
from artkit.cli.app import app

__all__ = ["app", "main"]


def main() -> None:
    app()
