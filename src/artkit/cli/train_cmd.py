"""``artkit train``: options → TrainConfig → artkit.trainer.train."""

from __future__ import annotations

from typing import Optional

import typer

from artkit.cli.app import app
from artkit.cli.common import console, explicit_options, run_core

D = "Data"
M = "Model"
L = "Loss"
O = "Optimisation"
H = "Hardware"
R = "Run"


@app.command("train")
def train_command(
    ctx: typer.Context,
    data: str = typer.Option("data", "--data", help="Dataset folder: train.csv (Dacon layout) or one sub-folder per class.", rich_help_panel=D),
    train_csv: Optional[str] = typer.Option(None, "--train-csv", help="Labelled CSV to train on (e.g. clean/train_clean.csv); image paths relative to it.", rich_help_panel=D),
    id_col: Optional[str] = typer.Option(None, "--id-col", help="Id column (default: id).", rich_help_panel=D),
    image_col: Optional[str] = typer.Option(None, "--image-col", help="Image path column (default: img_path, path, image, ...).", rich_help_panel=D),
    label_col: Optional[str] = typer.Option(None, "--label-col", help="Label column (default: artist, label, class, ...).", rich_help_panel=D),
    val_fraction: float = typer.Option(0.2, "--val-fraction", help="Stratified holdout fraction.", rich_help_panel=D),
    folds: Optional[int] = typer.Option(None, "--folds", help="Stratified k-fold: train all K folds into <run>/fold{i}/ and write oof.csv + cv.json.", rich_help_panel=D),
    fold: Optional[int] = typer.Option(None, "--fold", help="With --folds K: train only fold i (0-based).", rich_help_panel=D),
    full: bool = typer.Option(False, "--full", help="Train on every row, no validation, for exactly --epochs (a final model).", rich_help_panel=D),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Train without unreadable images (counted in the summary) instead of stopping.", rich_help_panel=D),
    sampler: str = typer.Option("none", "--sampler", help="none | balanced (inverse class frequency) | sqrt (inverse square root).", rich_help_panel=D),
    aug: str = typer.Option("light", "--aug", help="Augmentation preset: none | light | crop (quarter-image crops like Dacon's test set).", rich_help_panel=D),
    img_size: Optional[int] = typer.Option(None, "--img-size", help="Input size in pixels (default: the model's pretrained size).", rich_help_panel=D),
    mixup: float = typer.Option(0.0, "--mixup", help="Mixup alpha (0 = off).", rich_help_panel=D),
    cutmix: float = typer.Option(0.0, "--cutmix", help="CutMix alpha (0 = off), e.g. 1.0.", rich_help_panel=D),
    model: str = typer.Option("efficientnet_b0", "--model", "-m", help="Any timm model name (see `artkit models`).", rich_help_panel=M),
    pretrained: bool = typer.Option(True, "--pretrained/--no-pretrained", help="Start from timm's ImageNet weights (downloads once).", rich_help_panel=M),
    weights: Optional[str] = typer.Option(None, "--weights", help="Initialise from a local state dict / checkpoint; a classifier of another size is re-initialised.", rich_help_panel=M),
    drop_rate: float = typer.Option(0.0, "--drop-rate", help="Dropout before the classifier.", rich_help_panel=M),
    drop_path_rate: Optional[float] = typer.Option(None, "--drop-path-rate", help="Stochastic depth rate.", rich_help_panel=M),
    freeze_epochs: int = typer.Option(0, "--freeze-epochs", help="Train only the classifier (backbone frozen, BatchNorm statistics kept) for the first N of --epochs, then everything, like fastai's fine_tune.", rich_help_panel=M),
    loss: str = typer.Option("ce", "--loss", help="ce | focal.", rich_help_panel=L),
    label_smoothing: float = typer.Option(0.0, "--label-smoothing", help="Label smoothing epsilon.", rich_help_panel=L),
    class_weights: str = typer.Option("none", "--class-weights", help="none | inverse | sqrt | effective (class-balanced, beta 0.999); focal's alpha.", rich_help_panel=L),
    focal_gamma: float = typer.Option(2.0, "--focal-gamma", help="Focal loss gamma (0 = cross-entropy).", rich_help_panel=L),
    optimizer: str = typer.Option("adamw", "--optimizer", help="adamw | sgd (Nesterov momentum) | adam.", rich_help_panel=O),
    lr: float = typer.Option(5e-4, "--lr", help="Peak learning rate.", rich_help_panel=O),
    weight_decay: float = typer.Option(0.05, "--weight-decay", help="Weight decay (not applied to norms and biases).", rich_help_panel=O),
    layer_decay: Optional[float] = typer.Option(None, "--layer-decay", help="Layer-wise learning-rate decay for fine-tuning, e.g. 0.85: the classifier trains at --lr, each earlier layer group at 0.85x the next (timm).", rich_help_panel=O),
    momentum: float = typer.Option(0.9, "--momentum", help="SGD momentum.", rich_help_panel=O),
    scheduler: str = typer.Option("cosine", "--scheduler", help="cosine (with warmup) | step | none.", rich_help_panel=O),
    warmup_epochs: float = typer.Option(1.0, "--warmup-epochs", help="Linear warmup length in epochs (may be fractional).", rich_help_panel=O),
    min_lr: float = typer.Option(1e-6, "--min-lr", help="Final learning rate of the cosine schedule.", rich_help_panel=O),
    step_epochs: Optional[int] = typer.Option(None, "--step-epochs", help="Step schedule: epochs between decays (default epochs/3).", rich_help_panel=O),
    step_gamma: float = typer.Option(0.1, "--step-gamma", help="Step schedule: decay factor.", rich_help_panel=O),
    epochs: int = typer.Option(10, "--epochs", "-e", help="Number of epochs (with --resume: the new total).", rich_help_panel=O),
    batch_size: int = typer.Option(32, "--batch-size", "-b", help="Images per step.", rich_help_panel=O),
    grad_accum: int = typer.Option(1, "--grad-accum", help="Accumulate gradients over N steps (effective batch = N x batch size).", rich_help_panel=O),
    clip_grad: Optional[float] = typer.Option(None, "--clip-grad", help="Clip the gradient norm to this value.", rich_help_panel=O),
    ema: bool = typer.Option(False, "--ema/--no-ema", help="Keep an exponential moving average of the weights; validate and save it.", rich_help_panel=O),
    ema_decay: float = typer.Option(0.999, "--ema-decay", help="EMA decay per update.", rich_help_panel=O),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda | cuda:N.", rich_help_panel=H),
    amp: str = typer.Option("auto", "--amp", help="auto (bf16 where supported, else fp16; off on CPU) | fp16 | bf16 | off.", rich_help_panel=H),
    workers: Optional[int] = typer.Option(None, "--workers", "-w", help="Data-loading processes (default: CPU count, at most 8).", rich_help_panel=H),
    seed: int = typer.Option(42, "--seed", help="Seed for splits, sampling, augmentation and init: same seed, same run on CPU.", rich_help_panel=R),
    monitor: str = typer.Option("val_macro_f1", "--monitor", help="Metric that picks best.pt: val_macro_f1 | val_acc | val_loss.", rich_help_panel=R),
    patience: Optional[int] = typer.Option(None, "--patience", help="Stop after N epochs without improvement.", rich_help_panel=R),
    out: str = typer.Option("runs", "--out", help="Folder that holds run directories.", rich_help_panel=R),
    name: Optional[str] = typer.Option(None, "--name", help="Run name (default train, train2, ...); never overwritten.", rich_help_panel=R),
    resume: Optional[str] = typer.Option(None, "--resume", help="Continue runs/NAME from its last.pt (optionally with a larger --epochs).", rich_help_panel=R),
    config: Optional[str] = typer.Option(None, "--config", help="YAML file of options; flags on the command line override it.", rich_help_panel=R),
) -> None:
    """Train a timm model; writes runs/NAME/ (config.yaml, results.csv, best.pt, last.pt, plots)."""
    from artkit.cli.reporter import RichReporter
    from artkit.config import TrainConfig, config_from_mapping, load_yaml, option_names

    params = {k: v for k, v in ctx.params.items() if k in option_names() and k != "config"}
    explicit = explicit_options(ctx) - {"config"}
    if config:
        from_file = run_core(load_yaml, config)
        merged = {**params, **{k.replace("-", "_"): v for k, v in from_file.items()}}
        merged.update({k: params[k] for k in explicit})
        cfg = run_core(config_from_mapping, merged, TrainConfig, config)
        explicit |= {k.replace("-", "_") for k in from_file}
    else:
        cfg = TrainConfig(**params)

    from artkit.trainer import train

    with RichReporter() as reporter:
        result = run_core(train, cfg, reporter, explicit)
    _print_summary(result)


def _print_summary(result) -> None:
    from rich.table import Table

    if result.folds:
        table = Table(title="cross-validation", show_edge=False)
        for col in ("fold", "best epoch", "val macro-F1", "val acc", "run"):
            table.add_column(col)
        for i, r in enumerate(result.folds):
            table.add_row(str(i), str(r.best_epoch), f"{r.best_metrics.get('val_macro_f1', float('nan')):.4f}",
                          f"{r.best_metrics.get('val_acc', float('nan')):.4f}", str(r.run_dir))
        console.print(table)
        cv = result.cv
        console.print(f"[bold]CV macro-F1 {cv['cv_macro_f1_mean']:.4f} ± {cv['cv_macro_f1_std']:.4f}[/] "
                      f"(out-of-fold over {cv['rows']} rows: {cv['oof_macro_f1']:.4f})")
        console.print(f"  oof: {result.run_dir / 'oof.csv'}   cv: {result.run_dir / 'cv.json'}")
        return
    m = result.best_metrics
    if m:
        console.print(f"[bold green]done[/]: best epoch {result.best_epoch}: macro-F1 {m.get('val_macro_f1', float('nan')):.4f}, "
                      f"acc {m.get('val_acc', float('nan')):.4f}" + (" (stopped early)" if result.stopped_early else ""))
    else:
        console.print(f"[bold green]done[/]: {result.epochs_run} epoch(s), no validation (--full)")
    if result.skipped_bad:
        console.print(f"  [yellow]{len(result.skipped_bad)} unreadable image(s) skipped[/]")
    console.print(f"  best: {result.best_path}\n  last: {result.last_path}\n  results: {result.run_dir / 'results.csv'}")
