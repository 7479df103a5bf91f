"""Rich rendering of the core's progress hooks: bars on a terminal, plain lines otherwise."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from artkit.cli.app import console, styled
from artkit.progress import Reporter

_HEADER = (
    f"{'epoch':>7} {'lr':>9} {'train_loss':>10} {'val_loss':>9} {'val_acc':>8} {'val_f1':>7} {'sec':>6} {'img/s':>7}"
)


LOG_INTERVAL_SECONDS = 30.0  # off a terminal: a plain progress line this often (ARTKIT_LOG_INTERVAL overrides)


def _fmt(v: float, spec: str) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def log_interval() -> float:
    """Seconds between plain progress lines when the output is not a terminal."""
    try:
        return max(float(os.environ.get("ARTKIT_LOG_INTERVAL", LOG_INTERVAL_SECONDS)), 0.0)
    except ValueError:
        return LOG_INTERVAL_SECONDS


class RichReporter(Reporter):
    """Bars on a terminal. Off a terminal (a file, a notebook cell, nohup, CI) bars would print nothing until an
    epoch ends, so a plain line says where the run is every :func:`log_interval` seconds, as tqdm's
    ``mininterval`` does."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, interval: float | None = None) -> None:
        self.clock = clock  # tests pass a fake one
        self.interval = log_interval() if interval is None else interval
        self.logged = 0.0  # the clock when the last plain line was printed (or the epoch began)
        self.epoch_started = 0.0
        self.steps = 0
        self.epoch = 0
        self.bar: Progress | None = None  # the training epoch's bar
        self.task = None
        self.pass_bar: Progress | None = None  # an inference pass: validation, predict, eval, a member
        self.pass_task = None
        self.header_shown = False
        self.epochs = 0
        self.run_dir: str | None = None

    def start(self, info: dict[str, Any]) -> None:
        self.epochs = info["epochs"]
        self.run_dir = info["run_dir"]
        resumed = f", resuming after epoch {info['start_epoch']}" if info["start_epoch"] else ""
        console.print(styled("[bold]run[/] {}{}", info["run_dir"], resumed))
        console.print(
            f"  model {info['model']} ({info['init']}), "
            f"{info['classes']} classes, {info['img_size']}px; {info['train']} train / {info['val']} val images; "
            f"device {info['device']}, amp {info['amp']}"
            + (", torch.compile (the first steps wait for the compiler)" if info.get("compile") else "")
            + (f"; validation amp {info['val_amp']}" if info.get("val_amp") else "")
        )
        if info.get("processes", 1) > 1:
            console.print(
                f"  {info['processes']} processes (DistributedDataParallel): batch {info['batch']} per "
                f"process, {info['batch'] * info['processes']} in all"
            )
        for option, why in (info.get("chosen") or {}).items():
            console.print(f"  --{option} auto → {why}", soft_wrap=True)
        if info.get("ema"):
            console.print(f"  EMA of the weights ({info['ema']}) is validated and saved")
        if info.get("time"):
            console.print(f"  --time {info['time']}: the number of epochs is set from the first steps' speed")
        if info.get("cache"):
            console.print(f"  {info['cache']}", soft_wrap=True)
        if info.get("malloc_kept") and info["device"] == "cpu":
            console.print(
                "  freed memory is kept for the next step, not handed back to the system: faster CPU steps, "
                "up to a quarter more peak memory (ARTKIT_MALLOC=system turns it off)",
                soft_wrap=True,
            )
        if info.get("workers") == 0 and info["device"] == "cpu":
            console.print("  images load in the main process, between steps: the model's threads use every core")
        if info["skipped_bad"]:
            console.print(styled("  [yellow]skipping {} unreadable image(s)[/]", info["skipped_bad"]))
        self.header_shown = False

    def epoch_start(self, epoch: int, epochs: int, steps: int) -> None:
        self.epochs, self.epoch, self.steps = epochs, epoch, steps
        self.logged = self.epoch_started = self.clock()
        if not self.header_shown:
            console.print(styled("[bold]{}[/]", _HEADER))
            self.header_shown = True
        if console.is_terminal:
            self.bar = Progress(
                TextColumn(f"  epoch {epoch}/{epochs}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]} lr {task.fields[lr]} {task.fields[ips]} img/s"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=console,
                transient=True,
            )
            self.bar.start()
            self.task = self.bar.add_task("train", total=steps, loss="-", lr="-", ips="-")

    def step(self, step: int, loss: float, lr: float, images_per_s: float) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=step, loss=f"{loss:.4f}", lr=f"{lr:.2e}", ips=f"{images_per_s:.0f}")
        elif self.clock() - self.logged >= self.interval and step < self.steps:
            now = self.clock()
            self.logged = now
            done = step / max(self.steps, 1)
            eta = (now - self.epoch_started) * (1 - done) / max(done, 1e-9)
            console.print(
                f"  epoch {self.epoch}/{self.epochs} step {step}/{self.steps} ({done:.0%}) loss {loss:.4f} "
                f"lr {lr:.2e} {images_per_s:.0f} img/s, epoch ETA {_duration(eta)}",
                soft_wrap=True,
            )

    def epoch_end(self, row: dict[str, Any], improved: bool) -> None:
        self._stop_bars()
        line = (
            f"{row['epoch']:>3}/{self.epochs:<3} {_fmt(row['lr'], '9.2e')} {_fmt(row['train_loss'], '10.4f')} "
            f"{_fmt(row['val_loss'], '9.4f')} {_fmt(row['val_acc'], '8.4f')} {_fmt(row['val_macro_f1'], '7.4f')} "
            f"{row['seconds']:6.1f} {row['images_per_s']:7.1f}"
        )
        console.print(styled("{}  [green]★ best[/]", line) if improved else line)

    def message(self, text: str) -> None:
        console.print(f"  {text}")  # Rich prints above live bars; the console reads no markup, so [x] is text

    def warning(self, text: str) -> None:
        console.print(styled("  [bold red]warning:[/] {}", text))

    def progress(self, task: str, done: int, total: int) -> None:
        """A transient bar per inference pass (batches done of total); off a terminal, a plain line every
        :func:`log_interval` seconds."""
        if not console.is_terminal:
            now = self.clock()
            if done <= 1:
                self.logged = now  # a pass begins
            elif done < total and now - self.logged >= self.interval:
                self.logged = now
                console.print(f"  {task}: batch {done}/{total} ({done / max(total, 1):.0%})", soft_wrap=True)
            return
        if self.pass_bar is None:
            self.pass_bar = Progress(
                TextColumn("  {task.description}", markup=False),  # the pass's name is text, not markup
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("batches"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=console,
                transient=True,
            )
            self.pass_bar.start()
            self.pass_task = self.pass_bar.add_task(task, total=total)
        self.pass_bar.update(self.pass_task, completed=done, total=total)
        if done >= total:
            self.pass_bar.stop()
            self.pass_bar = None

    def _stop_bars(self) -> None:
        for bar in (self.bar, self.pass_bar):
            if bar is not None:
                bar.stop()
        self.bar = self.pass_bar = None

    def resume_hint(self) -> str:
        """What Ctrl-C during training prints: one line, what was kept and the command that continues the run."""
        from artkit.engine.runs import kept_note

        return kept_note(self.run_dir)

    def planned(self, epochs: int) -> None:
        self.epochs = epochs

    def kept_epochs_hint(self, exc: Exception) -> str | None:
        """After an error mid-run (a full disk, say): the finished epochs and how to continue. Not after a
        diverging loss, which a resume with the same options would only repeat."""
        from pathlib import Path

        from artkit.engine.steps import NonFiniteLoss

        if isinstance(exc, NonFiniteLoss):
            return None
        if self.run_dir and (Path(self.run_dir) / "last.pt").exists():
            return self.resume_hint()
        return None

    def close(self, failed: bool = False) -> None:
        self._stop_bars()

    def __enter__(self) -> RichReporter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()  # a bar left running would swallow the error message that follows
