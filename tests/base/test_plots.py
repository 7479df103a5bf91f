"""Training curves: epochs are whole numbers on the x axis, also for a run of one epoch."""

from __future__ import annotations

import pytest

from artkit.plots import curves_figure


@pytest.mark.parametrize("epochs", [1, 2, 7])
def test_curve_ticks_are_whole_epochs(epochs: int):
    rows = [dict(epoch=e, train_loss=1.0, val_loss=1.0, val_acc=0.5, val_macro_f1=0.5) for e in range(1, epochs + 1)]
    fig = curves_figure(rows)
    for ax in fig.axes:
        lo, hi = ax.get_xlim()
        ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
