"""``artkit eval``: score a checkpoint on labelled images."""

from __future__ import annotations

from typing import Optional

import typer

from artkit.cli.app import app
from artkit.cli.common import (AMP_OPTION, BATCH_SIZE_OPTION, DEVICE_OPTION, ID_COL_OPTION, IMAGE_COL_OPTION,
                                 LABEL_COL_OPTION, TTA_OPTION, WORKERS_OPTION, console, run_core)


@app.command("eval")
def eval_command(
    checkpoint: str = typer.Argument(..., help="A checkpoint, e.g. runs/train/best.pt."),
    data: Optional[str] = typer.Option(None, "--data", help="Score every labelled row of this dataset (default: the run's validation split)."),
    csv: Optional[str] = typer.Option(None, "--csv", help="Score a labelled CSV (id,img_path,label)."),
    out: Optional[str] = typer.Option(None, "--out", help="Output folder (default: beside the checkpoint, eval_<name>/)."),
    tta: str = TTA_OPTION,
    id_col: Optional[str] = ID_COL_OPTION,
    image_col: Optional[str] = IMAGE_COL_OPTION,
    label_col: Optional[str] = LABEL_COL_OPTION,
    batch_size: int = BATCH_SIZE_OPTION,
    device: str = DEVICE_OPTION,
    amp: str = AMP_OPTION,
    workers: Optional[int] = WORKERS_OPTION,
) -> None:
    """Accuracy, macro-F1, per-class table, most-confused pairs, confusion matrices, metrics.json."""
    from rich.table import Table

    from artkit.cli.reporter import RichReporter
    from artkit.inference import EvalConfig, InferenceOptions, run_eval

    cfg = EvalConfig(checkpoint, data, csv, out, id_col, image_col, label_col,
                     InferenceOptions(batch_size, device, amp, workers, tta))
    with RichReporter() as reporter:
        r = run_core(run_eval, cfg, reporter)
    table = Table(title=f"per class ({r.rows} images: {r.source})", show_edge=False)
    for col in ("class", "precision", "recall", "F1", "support"):
        table.add_column(col, justify="left" if col == "class" else "right")
    for row in sorted(r.per_class, key=lambda d: d["f1"]):
        if row["support"] == 0 and row["precision"] == 0:
            continue
        table.add_row(row["class"], f"{row['precision']:.3f}", f"{row['recall']:.3f}", f"{row['f1']:.3f}", str(row["support"]))
    console.print(table)
    if r.confused:
        pairs = Table(title="most confused (true → predicted)", show_edge=False)
        for col in ("true", "predicted as", "count"):
            pairs.add_column(col)
        for p in r.confused:
            pairs.add_row(p["true"], p["predicted"], str(p["count"]))
        console.print(pairs)
    m = r.metrics
    console.print(f"[bold]accuracy {m['acc']:.4f}   macro-F1 {m['macro_f1']:.4f}   weighted-F1 {m['weighted_f1']:.4f}[/]")
    console.print("  " + "\n  ".join(str(f) for f in r.files))
