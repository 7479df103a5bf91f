"""``artkit train``: options -> TrainConfig -> artkit.engine.train_command.train -> a summary."""

from __future__ import annotations

from artkit.cli.app import app, console, run_core, show
from artkit.cli.commands import config_command
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
    from artkit.engine.budget import now

    started = now()  # --time counts from here: importing torch and timm takes 5-10 s on 2 cores
    from artkit.cli.progress import RichReporter
    from artkit.engine.distributed import from_env
    from artkit.engine.train_command import train

    dist = run_core(from_env)  # RANK and WORLD_SIZE that are not numbers: one message
    if cfg.devices and not dist.active:
        _launch(cfg, explicit)
        return
    if dist.rank > 0:
        console.quiet = True  # rank 0 speaks for the job; errors still reach stderr

    with RichReporter() as reporter:
        result = run_core(
            train,
            cfg,
            reporter,
            explicit,
            started,
            interrupted=reporter.resume_hint,
            after_error=reporter.kept_epochs_hint,
        )
    _print_summary(result)


def _launch(cfg: TrainConfig, explicit: set[str]) -> None:
    """--devices: the processes of a multi-device run, or parallel folds."""
    import typer

    from artkit.cli.progress import RichReporter
    from artkit.engine.launch import launch_ddp, launch_folds

    fan_out = bool(cfg.folds) and cfg.fold is None
    with RichReporter() as reporter:
        r = run_core(launch_folds if fan_out else launch_ddp, cfg, explicit, reporter)
    if fan_out:
        failed = [f for f, code in r.folds.items() if code]
        if failed:
            show(
                "[red]fold(s) {} failed[/]: see their logs in {}; continue one with artkit train --resume {}, "
                "then artkit train --resume {} to write oof.csv",
                ", ".join(map(str, failed)),
                r.run_dir,
                f"{r.run_dir}/fold{failed[0]}",
                r.run_dir,
                soft_wrap=True,
            )
        else:
            show(
                "[bold]CV macro-F1 {} ± {}[/] (out-of-fold {}); oof: {}",
                f"{r.cv['cv_macro_f1_mean']:.4f}",
                f"{r.cv['cv_macro_f1_std']:.4f}",
                f"{r.cv['oof_macro_f1']:.4f}",
                r.run_dir / "oof.csv",
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
        show(
            "[bold]CV macro-F1 {} ± {}[/] (out-of-fold over {} rows: {})",
            f"{cv['cv_macro_f1_mean']:.4f}",
            f"{cv['cv_macro_f1_std']:.4f}",
            cv["rows"],
            f"{cv['oof_macro_f1']:.4f}",
        )
        console.print(f"  oof: {result.run_dir / 'oof.csv'}   cv: {result.run_dir / 'cv.json'}")
        for i, r in enumerate(result.folds):
            if r.warning:
                show("[bold red]warning:[/] fold {}: {}; the model may have learned nothing", i, r.warning)
        return
    m = result.best_metrics
    if m:
        show(
            "[bold green]done[/]: best epoch {}: macro-F1 {}, acc {} (validation split, no TTA){}",
            result.best_epoch,
            f"{m.get('val_macro_f1', float('nan')):.4f}",
            f"{m.get('val_acc', float('nan')):.4f}",
            " (stopped early)" if result.stopped_early else "",
        )
    else:
        show("[bold green]done[/]: {} epoch(s), no validation (--full)", result.epochs_run)
    if result.skipped_bad:
        show("  [yellow]{} unreadable image(s) skipped[/]", len(result.skipped_bad))
    if result.warning:
        show("[bold red]warning:[/] {}; the model may have learned nothing (see docs/train.md)", result.warning)
    console.print(
        f"  best: {result.best_path}\n  last: {result.last_path}\n  results: {result.run_dir / 'results.csv'}"
    )
