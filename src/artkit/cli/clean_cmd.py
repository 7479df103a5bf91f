"""``artkit clean``: options → CleanConfig → artkit.clean.run_clean → a Rich summary."""

from __future__ import annotations

import os
from typing import Optional

import typer

from artkit.cli.app import app
from artkit.cli.common import console, parse_csv_list, run_core
from artkit.cli.eda_cmd import DATA_HELP, pick_data, scan_progress

# kept here (not imported from artkit.clean) so that --help stays light; a test checks they agree
ISSUE_NAMES = ("unreadable, empty-label, duplicate-id, exact-duplicate, conflicting-labels, near-duplicate, "
               "train-test-leak, label-issue, grayscale, tiny")
DEFAULT_DROP = "unreadable,empty-label,duplicate-id,exact-duplicate,conflicting-labels"


@app.command("clean")
def clean_command(
    data: str = typer.Argument("data", help=DATA_HELP),
    data_opt: Optional[str] = typer.Option(None, "--data", help="Same as DATA (for symmetry with train/eval)."),
    out: str = typer.Option("clean", "--out", help="Output folder for issues.csv, train_clean.csv, flagged.png."),
    train_csv: Optional[str] = typer.Option(None, "--train-csv", help="Labelled CSV (default: DATA/train.csv)."),
    test_csv: Optional[str] = typer.Option(None, "--test-csv", help="Test CSV, for the train-test-leak check (default: DATA/test.csv, else DATA/test/)."),
    id_col: Optional[str] = typer.Option(None, "--id-col", help="Id column (default: id)."),
    image_col: Optional[str] = typer.Option(None, "--image-col", help="Image path column (default: img_path, path, ...)."),
    label_col: Optional[str] = typer.Option(None, "--label-col", help="Label column (default: artist, label, class, ...)."),
    workers: Optional[int] = typer.Option(None, "--workers", "-w", help="Decoding processes (default: CPU count)."),
    drop: str = typer.Option(DEFAULT_DROP, "--drop", help=f"Issues whose rows train_clean.csv leaves out, comma-separated, or none / all. Issues: {ISSUE_NAMES}."),
    fix: Optional[str] = typer.Option(None, "--fix", help="CSV id,label of relabels to apply to train_clean.csv."),
    oof: Optional[str] = typer.Option(None, "--oof", help="Out-of-fold probabilities (id,label,<one column per class>) from k-fold training: finds label-issue rows."),
    near_threshold: int = typer.Option(8, "--near-threshold", help="pHash Hamming distance (of 64 bits) for near-duplicate and train-test-leak; 0 = only visually identical."),
    min_size: int = typer.Option(32, "--min-size", help="Flag images whose smaller side is below this many pixels (tiny)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Decode every image again (the cache lives in $ARTKIT_CACHE_DIR, default ~/.cache/artkit)."),
) -> None:
    """Find unreadable files, duplicates, conflicting labels, train/test leaks, duplicate ids, grayscale and tiny
    images and (with --oof) likely label errors; write issues.csv and train_clean.csv. Images are never touched."""
    from rich.table import Table

    from artkit.clean import CleanConfig, run_clean

    cfg = CleanConfig(pick_data(data, data_opt), out, train_csv, test_csv, id_col, image_col, label_col,
                      workers or os.cpu_count() or 1, parse_csv_list(drop) or ["none"], fix, oof, near_threshold,
                      min_size, not no_cache)
    with scan_progress() as progress:
        r = run_core(run_clean, cfg, progress=progress)

    from artkit.clean import ISSUES

    table = Table(title="issues", show_edge=False, title_justify="left")
    table.add_column("issue")
    table.add_column("files", justify="right")
    table.add_column("rows dropped", justify="right")
    table.add_column("example")
    for issue in ISSUES:
        n = r.counts.get(issue, 0)
        if not n:
            continue
        first = r.issues[r.issues["issue"] == issue].iloc[0]
        table.add_row(issue, f"{n:,}", f"{r.dropped.get(issue, 0):,}" if issue in r.drop else "-",
                      f"{first['id']}: {first['detail']}")
    if r.counts:
        console.print(table)
    else:
        console.print("[green]no issues found[/]")
    policy = ", ".join(r.drop) if r.drop else "none"
    console.print(f"\n[bold]{r.rows_in:,}[/] training rows → [bold]{r.rows_out:,}[/] kept "
                  f"({r.rows_in - r.rows_out:,} dropped; --drop {policy})"
                  + (f", {r.relabelled:,} relabelled by --fix" if r.relabelled else ""))
    for note in r.notes:
        console.print(f"[dim]note: {note}[/]", soft_wrap=True)
    console.print(f"\n[bold green]cleaned CSV[/]: {r.train_clean_csv}   "
                  f"(train on it: artkit train --train-csv {r.train_clean_csv})")
    console.print(f"  issues:      {r.issues_csv}")
    if r.label_issues_csv:
        console.print(f"  label issues: {r.label_issues_csv} (worst first, with the suggested label)")
    if r.contact_sheet:
        console.print(f"  flagged:     {r.contact_sheet}")
    console.print(f"  summary:     {r.clean_json}")
