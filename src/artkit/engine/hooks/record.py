"""The run's record and progress as hooks: results.csv, and the reporter (the console's table and bars, and the
TensorBoard and MLflow loggers of :mod:`artkit.engine.loggers`, which share its interface)."""

from __future__ import annotations

from artkit.engine.hooks.base import EpochEnd, Hook, Step
from artkit.engine.runs import write_results


class ResultsCsvHook(Hook):
    """results.csv, rewritten with every epoch's row (rank 0 writes it)."""

    def on_epoch_end(self, loop, end: EpochEnd) -> None:
        if loop.s.dist.main:
            write_results(loop.s.run_dir / "results.csv", loop.s.rows)


class ReporterHook(Hook):
    """Each epoch's start, steps and row to the reporter."""

    def on_epoch_start(self, loop, epoch: int) -> None:
        loop.reporter.epoch_start(epoch + 1, loop.s.cfg.epochs, len(loop.s.loaders.train))

    def on_step(self, loop, step: Step) -> bool:
        loop.reporter.step(step.step, step.loss, step.lr, step.images_per_s)
        return False

    def on_epoch_end(self, loop, end: EpochEnd) -> None:
        loop.reporter.epoch_end(end.row, end.improved)
