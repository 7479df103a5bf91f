"""Rich rendering of the core's progress hooks: bars on a terminal, plain lines otherwise."""

from __future__ import annotations

import math
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from artkit.cli.common import console
from artkit.reporting import Reporter

_HEADER = f"{'epoch':>7} {'lr':>9} {'train_loss':>10} {'val_loss':>9} {'val_acc':>8} {'val_f1':>7} {'sec':>6} {'img/s':>7}"


def _fmt(v: float, spec: str) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


class RichReporter(Reporter):
    def __init__(self) -> None:
        self.progress: Progress | None = None
        self.task = None
        self.header_shown = False
        self.epochs = 0

    def start(self, info: dict[str, Any]) -> None:
        self.epochs = info["epochs"]
        resumed = f", resuming after epoch {info['start_epoch']}" if info["start_epoch"] else ""
        console.print(f"[bold]run[/] {info['run_dir']}{resumed}")
        console.print(f"  model {info['model']} ({'pretrained' if info['pretrained'] else 'no pretrained weights'}), "
                      f"{info['classes']} classes, {info['img_size']}px; {info['train']} train / {info['val']} val images; "
                      f"device {info['device']}, amp {info['amp']}")
        if info["skipped_bad"]:
            console.print(f"  [yellow]skipping {info['skipped_bad']} unreadable image(s)[/]")
        self.header_shown = False

    def epoch_start(self, epoch: int, epochs: int, steps: int) -> None:
        if not self.header_shown:
            console.print(f"[bold]{_HEADER}[/]")
            self.header_shown = True
        if console.is_terminal:
            self.progress = Progress(TextColumn(f"  epoch {epoch}/{epochs}"), BarColumn(), MofNCompleteColumn(),
                                     TextColumn("loss {task.fields[loss]} lr {task.fields[lr]} {task.fields[ips]} img/s"),
                                     TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=True)
            self.progress.start()
            self.task = self.progress.add_task("train", total=steps, loss="-", lr="-", ips="-")

    def step(self, step: int, loss: float, lr: float, images_per_s: float) -> None:
        if self.progress is not None:
            self.progress.update(self.task, completed=step, loss=f"{loss:.4f}", lr=f"{lr:.2e}", ips=f"{images_per_s:.0f}")

    def epoch_end(self, row: dict[str, Any], improved: bool) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
        line = (f"{row['epoch']:>3}/{self.epochs:<3} {_fmt(row['lr'], '9.2e')} {_fmt(row['train_loss'], '10.4f')} "
                f"{_fmt(row['val_loss'], '9.4f')} {_fmt(row['val_acc'], '8.4f')} {_fmt(row['val_macro_f1'], '7.4f')} "
                f"{row['seconds']:6.1f} {row['images_per_s']:7.1f}")
        console.print(line + ("  [green]★ best[/]" if improved else ""))

    def message(self, text: str) -> None:
        if self.progress is not None:
            self.progress.console.print(f"  {text}")
        else:
            console.print(f"  {text}")

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
