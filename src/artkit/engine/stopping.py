"""Which epoch is best, and when to stop: one object, like Ultralytics' ``EarlyStopping``."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(kw_only=True)
class EarlyStopping:
    """Tracks the monitored metric. ``mode`` is 'max' or 'min'; ``patience`` None never stops."""

    mode: str = "max"
    patience: int | None = None
    best_score: float | None = None
    best_epoch: int | None = None
    bad_epochs: int = 0

    def update(self, epoch: int, score: float | None) -> bool:
        """Record an epoch's score (None: no validation, every epoch counts as best); True if it is the new best.
        A non-finite score is never best."""
        if score is None:
            self.best_epoch, self.bad_epochs = epoch, 0
            return True
        if self._better(score):
            self.best_score, self.best_epoch, self.bad_epochs = score, epoch, 0
            return True
        self.bad_epochs += 1
        return False

    def _better(self, score: float) -> bool:
        if not math.isfinite(score):
            return False
        if self.best_score is None:
            return True
        return score > self.best_score if self.mode == "max" else score < self.best_score

    @property
    def should_stop(self) -> bool:
        return bool(self.patience) and self.bad_epochs >= self.patience

    def state(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k not in ("mode", "patience")}

    def load_state(self, state: dict[str, Any]) -> None:
        self.best_score, self.best_epoch = state["best_score"], state["best_epoch"]
        self.bad_epochs = int(state["bad_epochs"])
