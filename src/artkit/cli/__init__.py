"""The ``artkit`` command line: thin Typer commands over the core."""

from artkit.cli.app import app, main

__all__ = ["app", "main"]
