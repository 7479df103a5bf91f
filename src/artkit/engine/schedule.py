"""A learning-rate schedule whose length can change mid-run without the rate jumping back up.

A ``--time`` budget re-plans the run as epochs are timed. Rebuilding a cosine schedule for a new total moves every
update to another point of the curve: a longer plan after the decay has begun makes the rate climb back (measured:
5.7e-4 at epoch 5, 1.0e-3 at epoch 6). Here the timm scheduler is built once, for a nominal number of updates, and
each real update is mapped to a nominal position: the identity through the warmup, then piecewise linear. A re-plan
keeps the position the run has reached and spreads what is left of the nominal schedule over the updates now
planned: the rate is continuous at every re-plan and, after the warmup, never rises.
"""

from __future__ import annotations

from typing import Any

Segment = tuple[float, float, float]  # (first real update, its nominal position, nominal updates per real update)
ENDED = -1.0  # a segment's rate once the plan has ended: the schedule stays at its end


class StretchedSchedule:
    """``scheduler`` (timm's, stepped per update) over ``nominal`` updates, whose first ``warmup`` are never
    stretched; :meth:`replan` sets a new total number of updates from the update a run has reached."""

    def __init__(self, scheduler: Any, nominal: int, warmup: int) -> None:
        self.scheduler = scheduler
        self.nominal = max(int(nominal), 1)
        self.warmup = max(int(warmup), 0)
        self.segments: list[Segment] = [(0.0, 0.0, 1.0)]

    def position(self, update: float) -> float:
        """The nominal position of real update ``update``."""
        start, at, rate = next(s for s in reversed(self.segments) if s[0] <= update)
        if rate == ENDED:
            return float(self.nominal)
        return min(at + rate * (update - start), float(self.nominal))

    def replan(self, update: int, total: int) -> None:
        """From real update ``update`` on, the schedule ends at real update ``total`` (after the warmup)."""
        start = max(float(update), float(self.warmup))
        at = self.position(start)
        self.segments = [s for s in self.segments if s[0] < start]
        rate = ENDED if total <= start else (self.nominal - at) / (total - start)
        self.segments.append((start, at, rate))

    def step_update(self, update: int) -> None:
        self.scheduler.step_update(self.position(update))

    def state(self) -> dict[str, Any]:
        """Plain data for ``last.pt``, so that a resumed run follows the same curve."""
        return {"nominal": self.nominal, "warmup": self.warmup, "segments": [list(s) for s in self.segments]}

    def load_state(self, segments: list[list[float]]) -> None:
        self.segments = [(float(a), float(b), float(c)) for a, b, c in segments]
