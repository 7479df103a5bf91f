"""The ``artkit`` command line: thin Typer commands over the core.

``app`` lives in :mod:`artkit.cli.app`; importing the command modules here registers them on it, so the
commands and the app never import each other.
"""

# importing the command modules registers their commands on the app
from artkit.cli import clean, demo, eda, ensemble, eval, explain, models, predict, runs, train, weights  # noqa: F401
from artkit.cli.app import app

__all__ = ["app", "main"]


def main() -> None:
    app()
