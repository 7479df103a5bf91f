"""The degenerate-run check as a hook: says, once it holds after the first epochs, that the model has learned
nothing (validation near chance, or one class taking almost every prediction; :mod:`artkit.health`)."""

from __future__ import annotations

from artkit.engine.hooks.base import EpochEnd, Hook
from artkit.health import WARN_AFTER_EPOCHS, learning_warning


class LearningCheckHook(Hook):
    """Sets ``loop.warning`` (for the summary and ``artkit runs``) from the latest epoch, and warns when it starts
    to hold or changes kind."""

    def on_epoch_end(self, loop, end: EpochEnd) -> None:
        val, cfg = end.val, loop.s.cfg
        if val is None or not val.finite or end.epoch < min(WARN_AFTER_EPOCHS, cfg.epochs):
            return
        warning = learning_warning(val.logits.argmax(1), val.targets, loop.s.data.classes, val.metrics["val_macro_f1"])
        if warning and warning.split(" ")[0] != (loop.warning or "").split(" ")[0]:
            loop.reporter.warning(f"epoch {end.epoch}: {warning}; the model may have learned nothing")
        loop.warning = warning
