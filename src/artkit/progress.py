"""How the core tells its caller about progress, without printing: a Reporter with no-op hooks."""

from __future__ import annotations

from typing import Any


class Reporter:
    """Progress hooks; the CLI overrides them to draw Rich bars and tables. All default to no-ops."""

    def start(self, info: dict[str, Any]) -> None: ...

    def epoch_start(self, epoch: int, epochs: int, steps: int) -> None: ...

    def step(self, step: int, loss: float, lr: float, images_per_s: float) -> None: ...

    def epoch_end(self, row: dict[str, Any], improved: bool) -> None: ...

    def message(self, text: str) -> None: ...

    def warning(self, text: str) -> None:
        """Something the user must not miss (a run that learns nothing); a plain message unless overridden."""
        self.message(f"warning: {text}")

    def progress(self, task: str, done: int, total: int) -> None: ...

    def planned(self, epochs: int) -> None:
        """The run's number of epochs changed (a time budget's plan)."""

    def close(self, failed: bool = False) -> None: ...
