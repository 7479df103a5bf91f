"""``artkit clean``: options -> CleanConfig -> artkit.qa.clean.run_clean -> a Rich summary."""

from __future__ import annotations

from artkit.cli.app import app, console, run_core, scan_progress, show
from artkit.cli.commands import config_command
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
        show("[green]no issues found[/]")
    policy = ", ".join(r.drop) if r.drop else "none"
    show(
        "\n[bold]{}[/] training rows → [bold]{}[/] kept ({} dropped; --drop {}){}",
        f"{r.rows_in:,}",
        f"{r.rows_out:,}",
        f"{r.rows_in - r.rows_out:,}",
        policy,
        f", {r.relabelled:,} relabelled by --fix" if r.relabelled else "",
    )
    for note in r.notes:
        show("[dim]note: {}[/]", note, soft_wrap=True)
    show(
        "\n[bold green]cleaned CSV[/]: {}   (train on it: artkit train --train-csv {})",
        r.train_clean_csv,
        r.train_clean_csv,
    )
    console.print(f"  issues:      {r.issues_csv}")
    if r.label_issues_csv:
        console.print(f"  label issues: {r.label_issues_csv} (worst first, with the suggested label)")
    if r.contact_sheet:
        console.print(f"  flagged:     {r.contact_sheet}")
    console.print(f"  summary:     {r.clean_json}")
