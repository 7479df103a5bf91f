"""``artkit train``: options -> TrainConfig -> artkit.engine.train.train -> a summary."""

from __future__ import annotations

from artkit.cli.app import app, console, run_core
from artkit.cli.options import config_command
from artkit.engine.config import TrainConfig


@config_command(
    app,
    "train",
    TrainConfig,
    config_file=True,
    epilog="Example: artkit train data/ --model efficientnet_b3 --img-size 300 --epochs 15",
)
def train_command(cfg: TrainConfig, explicit: set[str]) -> None:
    """Train a timm model; writes runs/NAME/ (config.yaml, results.csv, best.pt, last.pt, plots)."""
    from artkit.cli.reporter import RichReporter
    from artkit.engine.distributed import from_env
    from artkit.engine.train import train

    if cfg.devices and not from_env().active:
        _launch(cfg, explicit)
        return
    if from_env().rank > 0:
        console.quiet = True  # rank 0 speaks for the job; errors still reach stderr

    with RichReporter() as reporter:
        result = run_core(
            train, cfg, reporter, explicit, interrupted=reporter.resume_hint, after_error=reporter.kept_epochs_hint
        )
    _print_summary(result)


def _launch(cfg: TrainConfig, explicit: set[str]) -> None:
    """--devices: the processes of a multi-device run, or parallel folds."""
    import typer

    from artkit.cli.reporter import RichReporter
    from artkit.engine.launch import launch_ddp, launch_folds

    fan_out = bool(cfg.folds) and cfg.fold is None
    with RichReporter() as reporter:
        r = run_core(launch_folds if fan_out else launch_ddp, cfg, explicit, reporter)
    if fan_out:
        failed = [f for f, code in r.folds.items() if code]
        if failed:
            console.print(
                f"[red]fold(s) {', '.join(map(str, failed))} failed[/]: see their logs in {r.run_dir}; "
                f"continue one with artkit train --resume {r.run_dir}/fold{failed[0]}, then "
                f"artkit train --resume {r.run_dir} to write oof.csv",
                soft_wrap=True,
            )
        else:
            console.print(
                f"[bold]CV macro-F1 {r.cv['cv_macro_f1_mean']:.4f} ± {r.cv['cv_macro_f1_std']:.4f}[/] "
                f"(out-of-fold {r.cv['oof_macro_f1']:.4f}); oof: {r.run_dir / 'oof.csv'}"
            )
    if r.returncode:
        raise typer.Exit(r.returncode if 0 < r.returncode < 128 else 1)


def _print_summary(result) -> None:
    from rich.table import Table

    if result.folds:
        table = Table(title="cross-validation", show_edge=False)
        for col in ("fold", "best epoch", "val macro-F1", "val acc", "run"):
            table.add_column(col)
        for i, r in enumerate(result.folds):
            table.add_row(
                str(i),
                str(r.best_epoch),
                f"{r.best_metrics.get('val_macro_f1', float('nan')):.4f}",
                f"{r.best_metrics.get('val_acc', float('nan')):.4f}",
                str(r.run_dir),
            )
        console.print(table)
        cv = result.cv
        console.print(
            f"[bold]CV macro-F1 {cv['cv_macro_f1_mean']:.4f} ± {cv['cv_macro_f1_std']:.4f}[/] "
            f"(out-of-fold over {cv['rows']} rows: {cv['oof_macro_f1']:.4f})"
        )
        console.print(f"  oof: {result.run_dir / 'oof.csv'}   cv: {result.run_dir / 'cv.json'}")
        return
    m = result.best_metrics
    if m:
        console.print(
            f"[bold green]done[/]: best epoch {result.best_epoch}: macro-F1 "
            f"{m.get('val_macro_f1', float('nan')):.4f}, acc {m.get('val_acc', float('nan')):.4f}"
            + (" (stopped early)" if result.stopped_early else "")
        )
    else:
        console.print(f"[bold green]done[/]: {result.epochs_run} epoch(s), no validation (--full)")
    if result.skipped_bad:
        console.print(f"  [yellow]{len(result.skipped_bad)} unreadable image(s) skipped[/]")
    console.print(
        f"  best: {result.best_path}\n  last: {result.last_path}\n  results: {result.run_dir / 'results.csv'}"
    )
