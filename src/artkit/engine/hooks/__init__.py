"""The training loop's hooks: small objects that the loop (:mod:`artkit.engine.trainer`) calls at fixed points.

A hook overrides the points it needs; each sees the loop, and through it the run's :class:`Session`
(``loop.s``), its reporter, :meth:`~artkit.engine.trainer.TrainLoop.replan` and
:meth:`~artkit.engine.trainer.TrainLoop.stop`. The loop calls them in list order (see
:func:`artkit.engine.hooks.default_hooks`)::

    on_start(loop)                    before the first epoch (after a resume's restore)
    on_epoch_start(loop, epoch)       epoch: the 0-based index of the epoch starting
    on_step(loop, step) -> bool       after every training step; True ends the epoch there (at an update)
    on_epoch_end(loop, end)           after validation, with the epoch's row and whether it is the new best
    on_end(loop, result)              after the last epoch, once plots and summary.json are written
"""

from __future__ import annotations

from artkit.engine.hooks.base import EpochEnd, Hook, Step

__all__ = ["EpochEnd", "Hook", "Step", "default_hooks"]


def default_hooks(cfg, budget=None) -> list[Hook]:
    """The hooks of an ``artkit train`` run, in the order they are called. Early stopping comes first (it decides
    whether the epoch is the new best), the time budget last (it times the epoch with everything the others do)."""
    from artkit.engine.config import parse_duration
    from artkit.engine.hooks.budget import TimeBudgetHook
    from artkit.engine.hooks.checkpoints import CheckpointHook, SaveEveryHook
    from artkit.engine.hooks.health import LearningCheckHook
    from artkit.engine.hooks.pace import PaceHook
    from artkit.engine.hooks.record import ReporterHook, ResultsCsvHook
    from artkit.engine.hooks.stopping import EarlyStoppingHook

    hooks: list[Hook] = [
        EarlyStoppingHook(),
        ResultsCsvHook(),
        CheckpointHook(),
        ReporterHook(),
        LearningCheckHook(),
        PaceHook(),
    ]
    if cfg.save_every:
        hooks.append(SaveEveryHook(seconds=parse_duration(cfg.save_every)))
    if budget is not None or cfg.time:
        hooks.append(TimeBudgetHook(budget))
    return hooks
