"""Early stopping as a hook: keeps score of the monitored metric and ends the run after ``--patience`` epochs
without a new best."""

from __future__ import annotations

from artkit.engine.hooks.base import EpochEnd, Hook


class EarlyStoppingHook(Hook):
    """Marks the epoch that is the new best (``end.improved``), with the session's :class:`EarlyStopping` (restored
    from last.pt on resume); an epoch whose validation is not finite is never best."""

    def on_epoch_end(self, loop, end: EpochEnd) -> None:
        s = loop.s
        score = None
        if end.val is not None:
            score = end.row[s.cfg.monitor] if end.val.finite else float("nan")
        end.improved = s.stopper.update(end.epoch, score)
        if s.data.has_val and s.stopper.should_stop:
            loop.stop(f"early stop: {s.cfg.monitor} has not improved for {s.cfg.patience} epochs")
