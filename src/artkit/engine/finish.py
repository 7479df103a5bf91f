"""The end of a training run: its plots and summary.json, and the :class:`TrainResult` the command returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from artkit.engine.checkpoint import CheckpointSaver
from artkit.engine.rundata import RunData
from artkit.engine.runs import write_summary
from artkit.metrics import confusion
from artkit.reader import load_npz


@dataclass(kw_only=True)
class TrainResult:
    run_dir: Path
    best_path: Path | None = None
    last_path: Path | None = None
    best_epoch: int | None = None
    best_metrics: dict[str, float] = field(default_factory=dict)
    epochs_run: int = 0
    stopped_early: bool = False
    skipped_bad: list[str] = field(default_factory=list)
    warning: str | None = None  # the run looks like it learned nothing (artkit.health)
    rows: list[dict[str, Any]] = field(default_factory=list)
    folds: list[TrainResult] = field(default_factory=list)
    cv: dict[str, Any] | None = None


def finish_run(
    run_dir: Path,
    rows: list[dict],
    data: RunData,
    best_epoch: int | None,
    stopped_early: bool,
    saver: CheckpointSaver,
    write: bool = True,
    warning: str | None = None,
) -> TrainResult:
    """Plots and summary.json of a finished run (``write``: rank 0 writes them); ``warning``: the last epoch looked
    like a model that learned nothing."""
    best_row = next((r for r in rows if r["epoch"] == best_epoch), rows[-1] if rows else {})
    best_metrics = {k: v for k, v in best_row.items() if k.startswith("val_") and np.isfinite(v)}
    bad = sorted(data.bad)
    if write:
        _finish_files(run_dir, rows, data)
        write_summary(
            run_dir,
            {
                "finished": True,
                "best_epoch": best_epoch,
                "best_metrics": best_metrics,
                "epochs_run": len(rows),
                "stopped_early": stopped_early,
                "skipped_bad": bad,
                "warning": warning,
            },
        )
    return TrainResult(
        run_dir=run_dir,
        best_path=saver.best_path,
        last_path=saver.last_path,
        best_epoch=best_epoch,
        best_metrics=best_metrics,
        epochs_run=len(rows),
        stopped_early=stopped_early,
        skipped_bad=bad,
        rows=rows,
        warning=warning,
    )


def _finish_files(run_dir: Path, rows: list[dict], data: RunData) -> None:
    from artkit.plots import plot_confusion, plot_curves

    if rows:
        plot_curves(rows, run_dir / "curves.png")
    val_path = run_dir / "val_predictions.npz"
    if val_path.exists():
        z = load_npz(val_path, ("targets", "logits"))
        cm = confusion(z["targets"], z["logits"].argmax(1), len(data.classes))
        plot_confusion(cm, data.classes, run_dir / "confusion_matrix.png")
