"""``artkit models``: list timm model names."""

from __future__ import annotations

import typer

from artkit.cli.app import app, console


@app.command("models", epilog="Example: artkit models 'convnext_*' --pretrained")
def models_command(
    pattern: str = typer.Argument("", help="Substring or wildcard, e.g. efficientnet or 'convnext*'."),
    pretrained: bool = typer.Option(False, "--pretrained", help="Only models with pretrained weights."),
) -> None:
    """List the timm models artkit can train (any of them works with --model)."""
    from artkit.models.factory import list_model_names

    names = list_model_names(pattern, pretrained)
    for name in names:
        console.print(name)
    console.print(f"[dim]{len(names)} model(s)[/]")
