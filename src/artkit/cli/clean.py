"""``artkit clean``: options -> CleanConfig -> artkit.qa.clean.run_clean -> a Rich summary."""

from __future__ import annotations

from artkit.cli.app import app, console, run_core, scan_progress
from artkit.cli.options import config_command
from artkit.qa.config import CleanConfig


@config_command(app, "clean", CleanConfig, epilog="Example: artkit clean data/ --drop all --fix fixes.csv")
def clean_command(cfg: CleanConfig, explicit: set[str]) -> None:
    """Find unreadable files, duplicates, conflicting labels, train/test leaks, duplicate ids, grayscale and tiny
    images and (with --oof) likely label errors; write issues.csv and train_clean.csv. Images are never touched."""
    from rich.table import Table

    from artkit.qa.clean import run_clean
    from artkit.qa.config import ISSUES

    with scan_progress() as progress:
        r = run_core(run_clean, cfg, progress=progress)

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
        table.add_row(
            issue,
            f"{n:,}",
            f"{r.dropped.get(issue, 0):,}" if issue in r.drop else "-",
            f"{first['id']}: {first['detail']}",
        )
    if r.counts:
        console.print(table)
    else:
        console.print("[green]no issues found[/]")
    policy = ", ".join(r.drop) if r.drop else "none"
    console.print(
        f"\n[bold]{r.rows_in:,}[/] training rows → [bold]{r.rows_out:,}[/] kept "
        f"({r.rows_in - r.rows_out:,} dropped; --drop {policy})"
        + (f", {r.relabelled:,} relabelled by --fix" if r.relabelled else "")
    )
    for note in r.notes:
        console.print(f"[dim]note: {note}[/]", soft_wrap=True)
    console.print(
        f"\n[bold green]cleaned CSV[/]: {r.train_clean_csv}   "
        f"(train on it: artkit train --train-csv {r.train_clean_csv})"
    )
    console.print(f"  issues:      {r.issues_csv}")
    if r.label_issues_csv:
        console.print(f"  label issues: {r.label_issues_csv} (worst first, with the suggested label)")
    if r.contact_sheet:
        console.print(f"  flagged:     {r.contact_sheet}")
    console.print(f"  summary:     {r.clean_json}")
