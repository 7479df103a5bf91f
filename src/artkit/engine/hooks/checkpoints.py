"""Checkpoints as hooks: best.pt and last.pt after every epoch, and (``--save-every``) last.pt within epochs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from artkit.engine.budget import now
from artkit.engine.hooks.base import EpochEnd, Hook, Step
from artkit.engine.resume import rng_state
from artkit.engine.validation import save_val_predictions


class CheckpointHook(Hook):
    """best.pt (and the validation predictions behind it) when the epoch is the new best, then last.pt: last is
    written last, so a kill at any point resumes from a consistent epoch. Rank 0 writes them."""

    def on_epoch_end(self, loop, end: EpochEnd) -> None:
        s = loop.s
        if not s.dist.main:
            return
        if end.improved:
            s.saver.save_best(s.parts.eval_model().state_dict(), _metrics(end.row), end.epoch)
            if end.val is not None:
                save_val_predictions(s.run_dir, s.data.val_rows["id"].tolist(), s.data.classes, end.val)
        save_last(loop, end.row, end.epoch, s.state.num_updates)


@dataclass(kw_only=True)
class SaveEveryHook(Hook):
    """``--save-every 10m``: last.pt also within an epoch, at the first optimiser update after every ``seconds``
    of the run, so that a preempted machine loses at most that much; ``--resume`` continues at that step."""

    seconds: float
    clock: Callable[[], float] = field(default_factory=lambda: now)  # tests pass a fake clock
    saved: float = 0.0  # the clock's reading at the last save

    def on_start(self, loop) -> None:
        self.saved = self.clock()

    def on_step(self, loop, step: Step) -> bool:
        if step.at_update and step.step < step.steps and self.clock() - self.saved >= self.seconds:
            if loop.s.dist.main:
                last_row = loop.s.rows[-1] if loop.s.rows else {"epoch": step.epoch}
                # the loss read now: on a GPU the step's own is steps old, and a NaN since must not be saved
                loss, images = step.exact() if step.exact is not None else (step.loss, step.images)
                within = {"step": step.step, "loss_sum": loss * images, "images": images}
                save_last(loop, last_row, step.epoch, step.num_updates, within=within)
            self.saved = self.clock()
        return False

    def on_epoch_end(self, loop, end: EpochEnd) -> None:
        self.saved = self.clock()  # the epoch's last.pt was just written


def save_last(loop, row: dict[str, Any], epoch: int, num_updates: int, within: dict | None = None) -> None:
    """last.pt: the weights (EMA's when on), and what resuming needs; ``within``: where epoch ``epoch + 1``
    stands (its steps done, their loss sum and images; a resumed run continues after them)."""
    s = loop.s
    state = s.state
    state.epoch, state.stopping, state.rng = epoch, s.stopper.state(), rng_state()
    state.optimizer = s.parts.optimizer.state_dict()
    state.scaler = s.parts.scaler.state_dict() if s.parts.scaler is not None else None
    state.model = s.parts.model.state_dict() if s.parts.ema is not None else None
    if s.parts.scheduler is not None:  # its shape after re-plans, so that a resumed run follows the same curve
        state.extra["schedule"] = {**s.parts.scheduler.state(), "epochs": s.cfg.epochs}
    state.extra.pop("within", None)
    saved = state.to_dict()
    if within is not None:
        saved = {**saved, "num_updates": num_updates, "extra": {**state.extra, "within": within}}
    s.saver.save_last(s.parts.eval_model().state_dict(), _metrics(row), epoch, saved)


def _metrics(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != "epoch"}
