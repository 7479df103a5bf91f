"""The Typer application. Only light modules are imported here so ``artkit --help`` is instant;
each command imports torch/timm/albumentations inside its own body."""

from __future__ import annotations

import os

import typer

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # artkit touches the network only for weights asked for

app = typer.Typer(
    name="artkit",
    help="Image-classification competition toolkit: eda → clean → train → eval → predict → ensemble.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(version: bool = typer.Option(False, "--version", help="Show the version and exit.", is_eager=True)) -> None:
    if version:
        from artkit import __version__

        typer.echo(f"artkit {__version__}")
        raise typer.Exit()


# Each module registers its command(s) on ``app`` when imported.
from artkit.cli import demo_cmd, eda_cmd, clean_cmd, train_cmd, eval_cmd, predict_cmd, ensemble_cmd, models_cmd  # noqa: E402,F401


def main() -> None:
    app()
