"""``artkit demo``: the whole pipeline on a built-in synthetic dataset, offline, in minutes on a CPU."""

from __future__ import annotations

from artkit.cli.app import app, console, run_core, show
from artkit.cli.commands import config_command
from artkit.demo import DemoConfig


@config_command(app, "demo", DemoConfig)
def demo_command(cfg: DemoConfig, explicit: set[str]) -> None:
    """Write a synthetic painter dataset, then train → eval → predict on it and show where everything went."""
    from artkit.cli.progress import RichReporter
    from artkit.demo import run_demo

    with RichReporter() as reporter:
        r = run_core(run_demo, cfg, reporter)
    show(
        "\n[bold green]demo finished[/]: validation macro-F1 {}, test macro-F1 {} "
        "(test images are quarter crops at half resolution)",
        f"{r.val_macro_f1:.3f}",
        f"{r.test_macro_f1:.3f}",
    )
    console.print(f"  data:        {r.data_dir}  (train.csv, test.csv, sample_submission.csv)")
    console.print(f"  run:         {r.run_dir}  (config.yaml, results.csv, best.pt, last.pt, curves.png)")
    console.print(f"  evaluation:  {r.eval_dir}  (metrics.json, confusion matrices)")
    console.print(f"  submission:  {r.submission}")
    console.print(f"  logits:      {r.logits}")
    show("next: point the same commands at your data, e.g. [bold]artkit train --data data/ --model efficientnet_b0[/]")
    if r.note:
        show("[yellow]note:[/] {}", r.note, soft_wrap=True)
