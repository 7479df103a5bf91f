"""``artkit eval``: score a checkpoint on labelled images."""

from __future__ import annotations

from artkit.cli.app import app, console, run_core, show
from artkit.cli.commands import config_command
from artkit.inference.config import EvalConfig

WORST = 10  # classes shown without --all


@config_command(app, "eval", EvalConfig, epilog="Example: artkit eval runs/train/best.pt --tta hflip")
def eval_command(cfg: EvalConfig, explicit: set[str]) -> None:
    """Accuracy, macro-F1, per-class table, most-confused pairs, confusion matrices, metrics.json."""
    from rich.table import Table

    from artkit.cli.progress import RichReporter
    from artkit.inference.evaluate import run_eval

    with RichReporter() as reporter:
        r = run_core(run_eval, cfg, reporter)
    present = [row for row in r.per_class if row["support"] or row["precision"]]
    shown = sorted(present, key=lambda d: d["f1"])[: None if cfg.show_all else WORST]
    title = f"per class, {'all' if len(shown) == len(present) else f'the {len(shown)} worst of {len(present)}'}"
    table = Table(title=f"{title} ({r.rows} images: {r.source})", show_edge=False)
    for col in ("class", "precision", "recall", "F1", "support"):
        table.add_column(col, justify="left" if col == "class" else "right")
    for row in shown:
        table.add_row(
            row["class"], f"{row['precision']:.3f}", f"{row['recall']:.3f}", f"{row['f1']:.3f}", str(row["support"])
        )
    console.print(table)
    if r.confused:
        pairs = Table(title="most confused (true → predicted)", show_edge=False)
        for col in ("true", "predicted as", "count"):
            pairs.add_column(col)
        for p in r.confused:
            pairs.add_row(p["true"], p["predicted"], str(p["count"]))
        console.print(pairs)
    m = r.metrics
    show(
        "[bold]accuracy {}   macro-F1 {}   weighted-F1 {}[/] (tta {})",
        f"{m['acc']:.4f}",
        f"{m['macro_f1']:.4f}",
        f"{m['weighted_f1']:.4f}",
        r.tta,
    )
    if r.note:
        console.print(f"  {r.note}", soft_wrap=True)
    console.print("  " + "\n  ".join(str(f) for f in r.files))
