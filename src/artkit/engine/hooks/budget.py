"""The time budget (``--time``) as a hook: it times the run and asks the loop for a new length through
:meth:`~artkit.engine.trainer.TrainLoop.replan` (the planner's arithmetic is :mod:`artkit.engine.budget`)."""

from __future__ import annotations

import numpy as np

from artkit.engine.budget import EpochPlanner, TimeBudget
from artkit.engine.config import parse_duration
from artkit.engine.distributed import broadcast
from artkit.engine.hooks.base import EpochEnd, Hook, Step
from artkit.engine.rundata import progressive_size
from artkit.engine.steps import SYNC_EVERY


class TimeBudgetHook(Hook):
    """Plans the epochs after the first steps, ends the run early within an epoch when not even that fits, and
    re-plans after every epoch from its measured time (validation and checkpoints included)."""

    def __init__(self, budget: TimeBudget | None = None) -> None:
        self.budget = budget  # None: --time from the start of the loop
        self.planner: EpochPlanner | None = None
        self.epoch_started = 0.0
        self.first_step = 0.0  # seconds the epoch's first step took: one-off costs, not the pace
        self.last_step = (0, 0.0)  # (steps, seconds) of the epoch so far

    def on_start(self, loop) -> None:
        s = loop.s
        budget = self.budget or TimeBudget(seconds=parse_duration(s.cfg.time))
        budget.classes = len(s.data.classes)
        val_ratio = s.loaders.val_size / max(s.loaders.train_size, 1)
        self.planner = EpochPlanner(budget=budget, steps_per_epoch=len(s.loaders.train), val_per_train_image=val_ratio)
        if s.rows:  # resumed: results.csv has the train seconds of each epoch; validation adds about a third per image
            timed = [r["seconds"] * (1 + val_ratio / 3) for r in s.rows]
            total = self.planner.total(s.state.epoch, float(np.median(timed)))
            loop.replan(total)
            self._first_plan(loop, total)
            self.planner.epoch_seconds.extend(timed)

    def on_epoch_start(self, loop, epoch: int) -> None:
        self.epoch_started = self.planner.budget.clock()
        self.first_step, self.last_step = 0.0, (0, 0.0)

    def on_step(self, loop, step: Step) -> bool:
        """True: the budget ends the run at this step."""
        planner, s, dist = self.planner, loop.s, loop.s.dist
        if step.exact is not None and step.step in (1, planner.probe_steps()):
            step.exact()  # the plan's two timings wait for the GPU: the host runs steps ahead of it
        seconds = planner.budget.clock() - self.epoch_started
        self.first_step = seconds if step.step == 1 else self.first_step
        self.last_step = (step.step, seconds)
        if step.step < planner.probe_steps():  # too few steps to judge the speed by
            return False
        # several processes decide with rank 0's clock, all at the same steps: a rank that stopped alone would
        # leave the others waiting in a collective for ever
        if not planner.epoch_seconds and step.step == planner.probe_steps():
            total = broadcast(planner.from_steps(step.epoch, step.step, seconds, self.first_step), dist)
            planner.stop_step = broadcast(planner.stop_step, dist)
            loop.replan(total, step.num_updates, stop_step=planner.stop_step)
            self._first_plan(loop, total)
        elif dist.active and step.step % SYNC_EVERY:
            pass  # a collective at every step would make each step wait for the GPU
        elif s.cfg.epochs > step.epoch + 1 and broadcast(planner.out_of_time(step.step, seconds), dist):
            loop.replan(step.epoch + 1, step.num_updates)
        elif s.cfg.epochs == step.epoch + 1 and planner.stop_step is None:
            stop = planner.stop_step = broadcast(planner.stop_within(step.step, seconds), dist)
            if stop is not None:
                loop.reporter.message(
                    f"--time {s.cfg.time}: the last epoch runs slower than planned: it ends at step {stop}"
                )
                loop.replan(step.epoch + 1, step.num_updates, stop_step=stop)
        return planner.stop_step is not None and step.step >= planner.stop_step

    def on_epoch_end(self, loop, end: EpochEnd) -> None:
        """The new plan, with one line saying why when the number of epochs changes."""
        planner, s = self.planner, loop.s
        seconds = self._epoch_pace() * self._size_growth(loop, end.epoch)
        before = planner.assumed_seconds
        epochs = broadcast(max(end.epoch, planner.after_epoch(end.epoch, seconds, s.cfg.epochs)), s.dist)
        if epochs != s.cfg.epochs:
            pace = planner.assumed_seconds or seconds
            why = (
                "there is room for one more"
                if epochs > s.cfg.epochs
                else f"more than the {before or pace:.0f} s planned"
            )
            loop.reporter.message(
                f"--time {s.cfg.time}: epochs take {pace:.0f} s, {why}: {s.cfg.epochs} → {epochs} epochs "
                "(the rest of the schedule is stretched or shortened, never restarted)"
            )
        loop.replan(epochs)

    def _epoch_pace(self) -> float:
        """The epoch's seconds; for the run's first, its steps after the first with an estimated validation,
        leaving out its one-off costs (the first batch, the first validation and checkpoint)."""
        planner = self.planner
        if planner.epoch_seconds or self.last_step[0] < 2:
            return planner.budget.clock() - self.epoch_started
        return planner.warm_epoch_seconds(*self.last_step, self.first_step)

    def _first_plan(self, loop, epochs: int) -> None:
        s, stop_step = loop.s, self.planner.stop_step
        ema = f"; EMA decay {s.parts.ema.decay:.4f}" if s.parts.ema is not None and s.cfg.ema_decay is None else ""
        if stop_step is None:
            loop.reporter.message(f"--time {s.cfg.time}: {epochs} epoch(s) fit in the budget{ema}")
            return
        minutes = (self.planner.assumed_seconds or 0) / 60
        loop.reporter.message(
            f"--time {s.cfg.time}: an epoch takes about {minutes:.1f} min, more than the budget: the run trains "
            f"{stop_step:,} of {len(s.loaders.train):,} steps of epoch {epochs} and validates there (the schedule "
            f"runs over steps){ema}"
        )

    @staticmethod
    def _size_growth(loop, next_epoch: int) -> float:
        """How much longer the next epoch takes than the last one because progressive resizing grows the images."""
        s = loop.s
        if not s.cfg.img_size_start or next_epoch >= s.cfg.epochs:
            return 1.0
        nxt = progressive_size(s.cfg.img_size_start, s.dcfg.img_size, next_epoch, s.cfg.epochs)
        return (nxt / s.loaders.img_size) ** 2
