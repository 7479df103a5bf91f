"""``artkit demo``: the whole pipeline on a built-in synthetic dataset, offline, in minutes on a CPU."""

from __future__ import annotations

from typing import Optional

import typer

from artkit.cli.app import app
from artkit.cli.common import console, run_core


@app.command("demo")
def demo_command(
    out: str = typer.Option("demo", "--out", help="Folder for the demo data, run and submission."),
    epochs: int = typer.Option(6, "--epochs", "-e"),
    model: str = typer.Option("resnet10t", "--model", "-m", help="timm model (trained from scratch, no download)."),
    img_size: int = typer.Option(64, "--img-size"),
    workers: Optional[int] = typer.Option(None, "--workers", "-w"),
) -> None:
    """Write a synthetic painter dataset, then train → eval → predict on it and show where everything went."""
    from artkit.cli.reporter import RichReporter
    from artkit.demo import DemoConfig, run_demo

    with RichReporter() as reporter:
        r = run_core(run_demo, DemoConfig(out, model, img_size, epochs, workers), reporter)
    console.print(f"\n[bold green]demo finished[/]: validation macro-F1 {r.val_macro_f1:.3f}, "
                  f"test macro-F1 {r.test_macro_f1:.3f} (test images are quarter crops at half resolution)")
    console.print(f"  data:        {r.data_dir}  (train.csv, test.csv, sample_submission.csv)")
    console.print(f"  run:         {r.run_dir}  (config.yaml, results.csv, best.pt, last.pt, curves.png)")
    console.print(f"  evaluation:  {r.eval_dir}  (metrics.json, confusion matrices)")
    console.print(f"  submission:  {r.submission}")
    console.print(f"  logits:      {r.logits}")
    console.print("next: point the same commands at your data, e.g. "
                  "[bold]artkit train --data data/ --model efficientnet_b0[/]")
