"""``artkit predict``: a checkpoint over the test set → submission.csv + logits.npz."""

from __future__ import annotations

from typing import Optional

import typer

from artkit.cli.app import app
from artkit.cli.common import (AMP_OPTION, BATCH_SIZE_OPTION, DEVICE_OPTION, ID_COL_OPTION, IMAGE_COL_OPTION,
                                 TTA_OPTION, WORKERS_OPTION, console, order_note, run_core)


@app.command("predict")
def predict_command(
    checkpoint: str = typer.Argument(..., help="A checkpoint, e.g. runs/train/best.pt."),
    data: str = typer.Option("data", "--data", help="Dataset folder with test.csv (or test/), and sample_submission.csv if any."),
    csv: Optional[str] = typer.Option(None, "--csv", help="Test CSV (id,img_path) instead of the folder's test.csv."),
    out: str = typer.Option("submission.csv", "--out", "-o", help="Submission file: rows in the test set's order (test.csv, or --csv)."),
    logits: Optional[str] = typer.Option(None, "--logits", help="Where to save logits for ensembling (default: beside -o, .npz)."),
    tta: str = TTA_OPTION,
    id_col: Optional[str] = ID_COL_OPTION,
    image_col: Optional[str] = IMAGE_COL_OPTION,
    batch_size: int = BATCH_SIZE_OPTION,
    device: str = DEVICE_OPTION,
    amp: str = AMP_OPTION,
    workers: Optional[int] = WORKERS_OPTION,
) -> None:
    """Predict the test set and write a submission in test.csv order, plus logits for `artkit ensemble`."""
    from artkit.cli.reporter import RichReporter
    from artkit.inference import InferenceOptions, PredictConfig, run_predict

    cfg = PredictConfig(checkpoint, data, csv, out, logits, id_col, image_col,
                        InferenceOptions(batch_size, device, amp, workers, tta))
    with RichReporter() as reporter:
        result = run_core(run_predict, cfg, reporter)
    top = ", ".join(f"{k} {v}" for k, v in sorted(result.counts.items(), key=lambda kv: -kv[1])[:5])
    console.print(f"[bold green]wrote[/] {result.submission} ({result.rows} rows, {order_note(csv)})")
    console.print(f"  logits: {result.logits}\n  most predicted: {top}")
