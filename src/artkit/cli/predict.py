"""``artkit predict``: a checkpoint over the test set -> submission.csv and logits.npz."""

from __future__ import annotations

from artkit.cli.app import app, console, order_note, run_core, show
from artkit.cli.commands import config_command
from artkit.inference.config import PredictConfig


@config_command(
    app,
    "predict",
    PredictConfig,
    epilog="Example: artkit predict runs/train/best.pt data/ --tta hflip -o submission.csv",
)
def predict_command(cfg: PredictConfig, explicit: set[str]) -> None:
    """Predict the test set and write a submission in test.csv order, plus logits for `artkit ensemble`."""
    from artkit.cli.progress import RichReporter
    from artkit.inference.predict import run_predict

    with RichReporter() as reporter:
        result = run_core(run_predict, cfg, reporter)
    top = ", ".join(f"{k} {v}" for k, v in sorted(result.counts.items(), key=lambda kv: -kv[1])[:5])
    show("[bold green]wrote[/] {} ({} rows, {})", result.submission, result.rows, order_note(cfg.csv))
    console.print(f"  checkpoint: {result.checkpoint}, tta: {result.tta}")
    console.print(f"  logits: {result.logits}\n  most predicted: {top}")
    if result.scores is not None:
        show(
            "[bold]accuracy {}   macro-F1 {}[/] on the labels of {} (tta {})",
            f"{result.scores['acc']:.4f}",
            f"{result.scores['macro_f1']:.4f}",
            cfg.csv,
            result.tta,
        )
    if result.warning:
        show("[bold red]warning:[/] {}", result.warning, soft_wrap=True)
