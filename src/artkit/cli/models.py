"""``artkit models``: find timm model names the way you type them."""

from __future__ import annotations

import typer

from artkit.cli.app import app, console, show


@app.command("models", epilog="Examples: artkit models effnet · artkit models 'convnext_*' --pretrained")
def models_command(
    pattern: str = typer.Argument(
        "",
        help="Part of a name (efficientnet_b), letters in order (effnet) or a "
        "wildcard ('convnext_*'); empty lists every model.",
    ),
    pretrained: bool = typer.Option(False, "--pretrained", help="Only models with pretrained weights."),
) -> None:
    """List the timm models artkit can train (any of them works with --model)."""
    from artkit.models.catalog import find_models

    found = find_models(pattern, pretrained)
    for name in found.names:
        console.print(name)
    how = {
        "letters in order": f" (no name contains '{pattern}'; these hold its letters in order, closest first)",
        "wildcard": f" matching '{pattern}'",
        "substring": f" containing '{pattern}'",
        "all": "",
    }[found.how]
    show("[dim]{} model(s){}[/]", len(found.names), how)
