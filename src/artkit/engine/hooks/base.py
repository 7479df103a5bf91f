"""The hook interface: the points of the loop, and what a hook sees at each (see :mod:`artkit.engine.hooks`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from artkit.engine.finish import TrainResult
from artkit.engine.session import Session
from artkit.engine.steps import Step
from artkit.engine.validation import Validation
from artkit.progress import Reporter


class TrainLoop(Protocol):
    """What a hook sees of the loop (:class:`artkit.engine.trainer.TrainLoop`), and all it may change."""

    s: Session  # the run's data, model, optimiser, state and rows
    reporter: Reporter
    warning: str | None  # the run looks like it learned nothing (set by the learning check)

    def replan(self, epochs: int, num_updates: int | None = None, stop_step: int | None = None) -> None:
        """A new length for the run: the rest of the schedule is stretched or shortened."""

    def stop(self, reason: str) -> None:
        """End the run after the current epoch, saying ``reason``."""


@dataclass(kw_only=True)
class EpochEnd:
    """A finished epoch, as hooks see it."""

    epoch: int  # 1-based: epochs finished
    row: dict[str, Any]  # its results.csv row
    val: Validation | None  # None without a validation split
    improved: bool = False  # the new best (set by the early-stopping hook, which keeps score)


class Hook:
    """The points of the loop; every one a no-op unless overridden."""

    def on_start(self, loop: TrainLoop) -> None: ...

    def on_epoch_start(self, loop: TrainLoop, epoch: int) -> None: ...

    def on_step(self, loop: TrainLoop, step: Step) -> bool:
        return False

    def on_epoch_end(self, loop: TrainLoop, end: EpochEnd) -> None: ...

    def on_end(self, loop: TrainLoop, result: TrainResult) -> None: ...
