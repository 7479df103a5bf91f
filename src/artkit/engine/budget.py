"""Training for a time instead of a number of epochs: how many epochs fit, re-planned as epochs are timed."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

# Kept for the last checkpoint, plots and summary: FINISH_RESERVE of the budget, and at least FINISH_SECONDS plus
# FINISH_SECONDS_PER_CLASS a class. In a fresh process on 2 cores, pyplot's first import and the curves took 1.5 s
# and a 50-class confusion matrix 1.7 s more on one machine; 2.1-2.3 s and 2.7-3.0 s on another (2026-12-05, with
# nothing else running); the constants leave a margin over the slower. The share of the budget also keeps epochs
# that run a little long within it. FINISH_RESERVE, OVERRUN_SLACK and GROW_MARGIN were chosen with
# bench/bench_budget_plan.py (simulated runs of the measured 30-minute one): 0.02, 0.03 and 0.03 used 97.5 % of a
# 30-minute budget on average, 99.2 % at worst, against 95.1 % and 99.0 % with 0.03, 0.05 and 0.05 (0.6 epochs
# more); a smaller reserve or slack ran over the budget, or re-planned back and forth.
FINISH_RESERVE = 0.02
FINISH_SECONDS = 3.0
FINISH_SECONDS_PER_CLASS = 0.06
OVERRUN_SLACK = 0.03  # of the budget: how far the last epoch may run over rather than be dropped
PROBE_FRACTION = 0.1  # of the first epoch's steps, timed for the first plan
# of the budget: a plan grows only when this much would be left unused (so a run may end this much early), so
# that epoch times wobbling by a few percent do not re-plan every epoch (+1 and -1 in turns on a 3-minute run)
GROW_MARGIN = 0.03


def now() -> float:
    """The clock a budget reads (``time.perf_counter``); tests replace it with a fake one."""
    return time.perf_counter()


@dataclass(kw_only=True)
class TimeBudget:
    """A number of seconds from ``started`` (``time.perf_counter``)."""

    seconds: float
    clock: Callable[[], float] = field(default_factory=lambda: now)  # tests pass a fake clock
    started: float | None = None  # the clock's reading at the start (default: now)
    classes: int = 0  # of the run: its confusion matrix is drawn after the last epoch

    def __post_init__(self) -> None:
        if self.started is None:
            self.started = self.clock()

    def left(self) -> float:
        """Seconds left for epochs."""
        return self.seconds - self.reserve() - (self.clock() - self.started)

    def reserve(self) -> float:
        """Seconds kept for the end of the run: the last checkpoint, plots and summary."""
        return max(self.seconds * FINISH_RESERVE, FINISH_SECONDS + FINISH_SECONDS_PER_CLASS * self.classes)

    def share(self, parts: int) -> TimeBudget:
        """An equal share of what is left, starting now (for one of ``parts`` folds)."""
        return TimeBudget(seconds=max(self.left(), 0.0) / max(parts, 1), classes=self.classes, clock=self.clock)


@dataclass(kw_only=True)
class EpochPlanner:
    """Sets the total number of epochs so that the run ends when the budget does: first from the first steps of
    the first epoch, then after every epoch from the measured epoch times."""

    budget: TimeBudget
    steps_per_epoch: int
    val_per_train_image: float  # validation images per training image of an epoch
    epoch_seconds: list[float] = field(default_factory=list)
    ended_early: bool = False  # the schedule was cut to end with an epoch: the run ends there, come what may
    stop_step: int | None = None  # the run ends at this step of its current epoch: not even that epoch fits
    assumed_seconds: float | None = None  # the epoch time the current plan was made with (for the re-plan line)

    def probe_steps(self) -> int:
        """Steps timed before a plan: a tenth of an epoch, at least three, at most the whole epoch (an epoch of
        fewer steps must still be planned, and checked for time, within itself)."""
        return min(self.steps_per_epoch, max(3, int(self.steps_per_epoch * PROBE_FRACTION)))

    def from_steps(self, done_epochs: int, steps: int, seconds: float, first_step: float = 0.0) -> int:
        """Total epochs from the first ``steps`` training steps of an epoch, which took ``seconds``, the first of
        them ``first_step`` (left out of the pace: see :meth:`step_pace`). Validation runs the forward pass only:
        about a third of a training step per image. When not even this epoch fits, the plan is in steps:
        :attr:`stop_step` is where the run ends."""
        pace = self.step_pace(steps, seconds, first_step)
        epoch = self._epoch_seconds(pace)
        self.assumed_seconds = epoch
        rest_of_this_epoch = epoch - pace * steps
        self.stop_step = self._fitting_step(steps, pace, rest_of_this_epoch)
        more = int((self.budget.left() - rest_of_this_epoch) // max(epoch, 1e-6))
        return done_epochs + 1 + max(more, 0)

    @staticmethod
    def step_pace(steps: int, seconds: float, first_step: float = 0.0) -> float:
        """Seconds a step, from ``steps`` steps that took ``seconds``, leaving out the first (``first_step``; 0:
        keep it). A run's first step waits for the first batch, the loader workers and the kernels' first calls:
        1.3 s against 0.05 s for later steps of a tiny model (a CI failure: a 20-second run planned 3 epochs from
        it and ended at 8 s)."""
        if steps < 2 or first_step <= 0:
            return seconds / max(steps, 1)
        return (seconds - first_step) / (steps - 1)

    def warm_epoch_seconds(self, steps: int, seconds: float, first_step: float = 0.0) -> float:
        """An epoch's seconds, with validation, at the :meth:`step_pace` of its first ``steps`` steps."""
        return self._epoch_seconds(self.step_pace(steps, seconds, first_step))

    def _epoch_seconds(self, step_seconds: float) -> float:
        return step_seconds * self.steps_per_epoch * (1 + self.val_per_train_image / 3)

    def _fitting_step(self, steps: int, step_seconds: float, rest: float) -> int | None:
        """The last step of the current epoch that still fits the budget (with its validation), or None when the
        whole epoch does."""
        if self.budget.left() >= rest:
            return None
        validation = step_seconds * self.steps_per_epoch * self.val_per_train_image / 3
        more = int(max(self.budget.left() - validation, 0.0) // max(step_seconds, 1e-9))
        return steps + more if steps + more < self.steps_per_epoch else None

    def after_epoch(self, done_epochs: int, seconds: float, planned: int) -> int:
        """Total epochs after an epoch that took ``seconds`` (scaled to the next epoch's image size; for a run's
        first epoch, its :meth:`warm_epoch_seconds`), of the ``planned`` ones; the median of the last three epochs
        keeps one slow epoch from cutting the run short. A schedule that has ended is not lengthened (that would
        restart it near its lowest lr), and one planned epoch more is kept while half of it fits: the check within
        the epoch found it fitting, and ending now would leave the schedule short of its end (both were CI
        failures, on epochs of 0.1 s)."""
        self.epoch_seconds.append(seconds)
        if self.ended_early or self.stop_step is not None or done_epochs >= planned:
            return done_epochs
        timed = self.epoch_seconds[1:] or self.epoch_seconds  # a first epoch's is an estimate: measured ones win
        epoch = statistics.median(timed[-3:])
        total = self.total(done_epochs, epoch)
        if total == done_epochs and self.budget.left() + self.budget.seconds * OVERRUN_SLACK >= epoch / 2:
            total = done_epochs + 1
        if total > planned:  # damped: one epoch more at a time, when the slower estimate has room to spare too
            cautious = max(epoch, statistics.median(timed))
            unused = self.budget.left() - (planned - done_epochs) * cautious
            total = planned + 1 if unused >= max(cautious, self.budget.seconds * GROW_MARGIN) else planned
        if total != planned:
            self.assumed_seconds = epoch
        return total

    def out_of_time(self, step: int, seconds: float) -> bool:
        """True when not even one more epoch fits after the current one, whose first ``step`` steps took
        ``seconds``: the run then ends with the current epoch (its schedule shortened to end there). When some
        but not all of the planned epochs fit, the plan shrinks after the epoch instead."""
        per_epoch = self.warm_epoch_seconds(step, seconds)
        rest = per_epoch - seconds
        next_epoch = statistics.median(self.epoch_seconds[-3:]) if self.epoch_seconds else per_epoch
        self.ended_early = self.budget.left() + self.budget.seconds * OVERRUN_SLACK < rest + next_epoch
        return self.ended_early

    def stop_within(self, step: int, seconds: float) -> int | None:
        """When the rest of the current epoch (the last one) no longer fits, even with the slack, the step to
        stop at; else None. Once set, :attr:`stop_step` stays."""
        if self.stop_step is None:
            rest = self.warm_epoch_seconds(step, seconds) - seconds
            if self.budget.left() + self.budget.seconds * OVERRUN_SLACK < rest:
                self.stop_step = self._fitting_step(step, seconds / max(step, 1), rest)
        return self.stop_step

    def total(self, done_epochs: int, epoch_seconds: float) -> int:
        """The epochs done plus as many more as fit in what is left (at least one epoch in all). An epoch that
        would overrun by less than OVERRUN_SLACK of the budget still fits, so that a schedule planned to end with
        it is not cut short by a slightly slow epoch."""
        slack = self.budget.seconds * OVERRUN_SLACK
        more = int((self.budget.left() + slack) // max(epoch_seconds, 1e-6))
        return max(done_epochs + more, 1)
