"""The Typer application and what every command shares: the console, error handling, progress bars.

Commands import this module; it imports none of them (``artkit/cli/__init__.py`` does), so the app and
the commands never import each other. Only light modules are imported here so ``artkit --help`` is
instant; each command imports torch, timm and albumentations inside its own body.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import typer

from artkit.cli.console import console, err_console, show, styled

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # artkit touches the network only for weights asked for

__all__ = ["app", "console", "err_console", "fail", "run_core", "show", "styled"]

app = typer.Typer(
    name="artkit",
    help="Image-classification competition toolkit: eda → clean → train → eval → predict → ensemble.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from artkit import __version__

        typer.echo(f"artkit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", help="Show the version and exit.", is_eager=True, callback=_version
    ),
) -> None:
    """Image-classification competition toolkit: eda → clean → train → eval → predict → ensemble."""


Result = TypeVar("Result")


def run_core(
    fn: Callable[..., Result],
    *args: Any,
    interrupted: Callable[[], str] | None = None,
    after_error: Callable[[Exception], str | None] | None = None,
    **kwargs: Any,
) -> Result:
    """Call a core function; a user-caused error becomes one clear message and exit code 2.
    ``interrupted`` is what Ctrl-C prints (how to continue); ``after_error`` may add a line to an error
    (such as the command that resumes a run whose finished epochs were kept)."""
    from artkit.errors import ArtkitError, unwrap_worker_traceback, user_message

    try:
        return fn(*args, **kwargs)
    except ArtkitError as exc:
        extra = after_error(exc) if after_error is not None else None
        fail((user_message(exc) or str(exc)) + (f"\n  {extra}" if extra else ""))
    except KeyboardInterrupt:
        note = interrupted() if interrupted is not None else "finished work is kept on disk"
        show("[yellow]interrupted[/]: {}", note, err=True, soft_wrap=True)
        raise typer.Exit(130) from None
    except RuntimeError as exc:  # DataLoader workers wrap our errors in RuntimeError text
        text = str(exc)
        if "ImageLoadError" in text or "ArtkitError" in text:
            fail(unwrap_worker_traceback(text))
        raise
    raise AssertionError("unreachable")


def fail(message: str, hint: str | None = None) -> None:
    """Stop the command with a usage-style error: one message, exit code 2."""
    text = message + (f"\n  hint: {hint}" if hint else "")
    show("[bold red]error:[/] {}", text, err=True, soft_wrap=True)
    raise typer.Exit(2)


def order_note(csv: str | None) -> str:
    """How the written rows are ordered, for the closing message of predict and ensemble."""
    return f"in the order of {csv}" if csv else "in test-set order"


@contextmanager
def scan_progress(what: str = "scanning images") -> Iterator[Callable[[int, int], None]]:
    """A Rich progress bar fed by the core's progress(done, total) callback."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn("  {task.description}", markup=False),  # what is text, not markup (nor a format string)
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )
    task = None

    def update(done: int, total: int) -> None:
        nonlocal task
        if task is None:
            task = bar.add_task(what, total=total)
        bar.update(task, completed=done, total=total)

    with bar:
        yield update
