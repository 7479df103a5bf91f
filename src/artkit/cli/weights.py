"""``artkit weights save|show``: weights files to carry to a machine without internet."""

from __future__ import annotations

import typer

from artkit.cli.app import app, console, run_core, show
from artkit.cli.commands import config_command
from artkit.models.config import WeightsSaveConfig, WeightsShowConfig

weights_app = typer.Typer(
    name="weights",
    help="Weights files you can carry: save timm's pretrained weights once, train offline.",
    no_args_is_help=True,
)
app.add_typer(weights_app)


@config_command(
    weights_app,
    "save",
    WeightsSaveConfig,
    epilog="Example: artkit weights save tf_efficientnet_lite0 -o weights/lite0.pt, then "
    "artkit train data/ --weights weights/lite0.pt (no internet needed)",
)
def save_command(cfg: WeightsSaveConfig, explicit: set[str]) -> None:
    """Write a model's weights, name and normalisation to one file for `artkit train --weights FILE`."""
    from artkit.models.weights import save_weights

    info = run_core(save_weights, cfg)
    show("[bold green]wrote[/] {}: {}, {} tensors, {}", info.path, info.model, info.tensors, info.source)
    console.print(f"  use it offline: artkit train DATA --weights {info.path}  (the model comes from the file)")


@config_command(weights_app, "show", WeightsShowConfig, epilog="Example: artkit weights show weights/lite0.pt")
def show_command(cfg: WeightsShowConfig, explicit: set[str]) -> None:
    """Say what a weights file holds: model, tensors, classes, input size and normalisation."""
    from rich.table import Table

    from artkit.models.weights import describe_weights

    info = run_core(describe_weights, cfg.file)
    table = Table(show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column()
    rows = [
        ("file", str(info.path)),
        ("kind", info.kind),
        ("model", info.model or "not recorded (pass --model)"),
        ("tensors", f"{info.tensors:,} ({info.parameters:,} parameters)"),
        ("classes", str(info.classes) if info.classes else "-"),
        ("input size", f"{info.input_size} px" if info.input_size else "-"),
        ("mean / std", f"{info.mean} / {info.std}" if info.mean else "not recorded (the model's defaults apply)"),
        ("source", info.source or "-"),
    ]
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)
