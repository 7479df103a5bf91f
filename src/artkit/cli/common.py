"""Shared CLI helpers: the console, error reporting, config-file merging."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

T = TypeVar("T")


def run_core(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call a core function; a user-caused error becomes one clear message and exit code 2."""
    from artkit.errors import ArtkitError, unwrap_worker_traceback, user_message

    try:
        return fn(*args, **kwargs)
    except ArtkitError as exc:
        err_console.print(f"[bold red]error:[/] {user_message(exc)}", markup=True, soft_wrap=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]: finished work is kept on disk")
        raise typer.Exit(130) from None
    except RuntimeError as exc:  # DataLoader workers wrap our errors in RuntimeError text
        text = str(exc)
        if "ImageLoadError" in text or "ArtkitError" in text:
            err_console.print(f"[bold red]error:[/] {unwrap_worker_traceback(text)}", soft_wrap=True)
            raise typer.Exit(2) from None
        raise


def fail(message: str, hint: str | None = None) -> None:
    """Stop the command with a usage-style error."""
    err_console.print(f"[bold red]error:[/] {message}" + (f"\n  hint: {hint}" if hint else ""), soft_wrap=True)
    raise typer.Exit(2)


def order_note(csv: str | None) -> str:
    """How the written rows are ordered, for the closing message of predict and ensemble."""
    return f"in the order of {csv}" if csv else "in test-set order"


def is_tty() -> bool:
    return sys.stdout.isatty()


def explicit_options(ctx: typer.Context) -> set[str]:
    """Names of the parameters given on the command line (not defaults), so that
    ``--config`` values apply only where the user said nothing."""
    # compare by name: recent Typer vendors its own copy of click, with its own ParameterSource enum
    return {name for name in ctx.params
            if getattr(ctx.get_parameter_source(name), "name", None) == "COMMANDLINE"}


def parse_csv_list(value: str | None) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()] if value else []


# here rather than in artkit.tta so that --help does not import torch
TTA_HELP = ("Test-time augmentation, combinable with commas: none | hflip (2 views) | vflip (2) | five-crop (5) | "
            "multi-scale (3: 0.875x, 1x, 1.125x). Views multiply (hflip,five-crop = 10) and so does the time.")


# Options shared by the commands that run models over images (predict, eval, ensemble)
TTA_OPTION = typer.Option("none", "--tta", help=TTA_HELP)
BATCH_SIZE_OPTION = typer.Option(64, "--batch-size", "-b", help="Images per forward pass.")
DEVICE_OPTION = typer.Option("auto", "--device", help="auto | cpu | cuda | cuda:N.")
AMP_OPTION = typer.Option("auto", "--amp", help="auto (bf16 where supported, else fp16; off on CPU) | fp16 | bf16 | off.")
WORKERS_OPTION = typer.Option(None, "--workers", "-w", help="Data-loading processes (default: CPU count, at most 8).")
ID_COL_OPTION = typer.Option(None, "--id-col", help="Id column of the CSV (default: id).")
IMAGE_COL_OPTION = typer.Option(None, "--image-col", help="Image path column of the CSV (default: img_path, path, ...).")
LABEL_COL_OPTION = typer.Option(None, "--label-col", help="Label column of a labelled CSV (default: artist, label, ...).")
