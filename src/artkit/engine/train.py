"""The ``artkit train`` entry point: a new run, k-fold runs, or a resumed run."""

from __future__ import annotations

from pathlib import Path

from artkit.engine import kfold
from artkit.engine.budget import TimeBudget
from artkit.engine.config import TrainConfig, parse_duration
from artkit.engine.runs import new_run_dir
from artkit.engine.trainer import TrainResult, fit_new, resume_config, resume_run, validate_config
from artkit.errors import ArtkitError
from artkit.reporting import Reporter


def train(cfg: TrainConfig, reporter: Reporter | None = None, explicit: set[str] | None = None) -> TrainResult:
    """Run ``artkit train``. ``explicit`` names the options the user set, so that resuming can check that
    nothing else changed."""
    reporter = reporter or Reporter()
    budget = TimeBudget(seconds=parse_duration(cfg.time)) if cfg.time else None  # counts from here, setup included
    if cfg.resume:
        run_dir = Path(cfg.resume)
        if not (run_dir / "config.yaml").exists():
            raise ArtkitError(
                f"{run_dir} is not an artkit run directory (no config.yaml)",
                "pass the run folder, e.g. --resume runs/train2",
            )
        cfg = resume_config(run_dir, cfg, explicit if explicit is not None else set())
        if cfg.folds and cfg.fold is None:
            return kfold.train_all_folds(cfg, run_dir, reporter, resuming=True, budget=budget)
        return resume_run(cfg, run_dir, reporter, budget)
    validate_config(cfg)
    if cfg.folds:
        return kfold.train_folds(cfg, reporter, budget)
    return fit_new(cfg, new_run_dir(cfg.out, cfg.name), reporter, budget)
