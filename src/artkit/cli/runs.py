"""``artkit runs``: every run in one table: what differs between them, how they scored, whether they finished."""

from __future__ import annotations

from artkit.cli.app import app, console, run_core, show
from artkit.cli.commands import config_command
from artkit.engine.config import RunsConfig


@config_command(app, "runs", RunsConfig, epilog="Example: artkit runs --sort score --csv runs.csv")
def runs_command(cfg: RunsConfig, explicit: set[str]) -> None:
    """Compare the runs under a folder: model, size, epochs, the options that differ, score, time, status."""
    from pathlib import Path

    from rich.table import Table
    from rich.text import Text

    from artkit.engine.runs_table import find_runs, sort_runs, write_runs_csv

    rows = sort_runs(run_core(find_runs, Path(cfg.folder)), cfg.sort)
    if not rows:
        console.print(f"no runs under {cfg.folder} (a run is a folder with config.yaml; train one with artkit train)")
        return
    table = Table(title=f"runs under {cfg.folder}", show_edge=False)
    widest = max(len(r.name) for r in rows)
    table.add_column("run", no_wrap=True, min_width=min(widest, 24))
    for col in ("status", "score", "model", "size", "epochs", "time"):
        table.add_column(col, justify="right" if col in ("score", "size", "time") else "left", no_wrap=True)
    table.add_column("differs", overflow="fold", min_width=16)
    for r in rows:
        score = f"{r.score:.4f}" + (" CV" if r.score_kind.startswith("CV") else "") if r.score is not None else "-"
        colour = {"finished": "green", "running": "cyan", "interrupted": "yellow"}.get(r.status, "bold red")
        table.add_row(
            r.name,
            Text(r.status, style=colour),
            score,
            r.model,
            r.img_size,
            r.epochs,
            f"{r.seconds / 60:.1f} min",
            r.differs,
        )
    console.print(table)
    for r in rows:
        if r.note:
            show("  [bold red]damaged[/] {}: {}", r.name, r.note, soft_wrap=True)
    if cfg.csv:
        run_core(write_runs_csv, rows, cfg.csv)
        console.print(f"  written to {cfg.csv}")
