"""``artkit eda``: options → EdaConfig → artkit.eda.run_eda → a Rich summary."""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Optional

import typer

from artkit.cli.app import app
from artkit.cli.common import console, run_core

DATA_HELP = "Dataset folder: train.csv/test.csv (Dacon layout) or one sub-folder per class."


@contextmanager
def scan_progress(what: str = "scanning images"):
    """A Rich progress bar fed by the core's progress(done, total) callback."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    bar = Progress(TextColumn(f"  {what}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TimeRemainingColumn(), console=console, transient=True)
    task = None

    def update(done: int, total: int) -> None:
        nonlocal task
        if task is None:
            task = bar.add_task(what, total=total)
        bar.update(task, completed=done, total=total)

    with bar:
        yield update


def pick_data(data_arg: str, data_opt: Optional[str]) -> str:
    return data_opt if data_opt is not None else data_arg


@app.command("eda")
def eda_command(
    data: str = typer.Argument("data", help=DATA_HELP),
    data_opt: Optional[str] = typer.Option(None, "--data", help="Same as DATA (for symmetry with train/eval)."),
    out: str = typer.Option("eda", "--out", help="Output folder for report.html, eda.json and the PNGs."),
    train_csv: Optional[str] = typer.Option(None, "--train-csv", help="Labelled CSV (default: DATA/train.csv)."),
    test_csv: Optional[str] = typer.Option(None, "--test-csv", help="Test CSV (default: DATA/test.csv, else DATA/test/)."),
    id_col: Optional[str] = typer.Option(None, "--id-col", help="Id column (default: id)."),
    image_col: Optional[str] = typer.Option(None, "--image-col", help="Image path column (default: img_path, path, ...)."),
    label_col: Optional[str] = typer.Option(None, "--label-col", help="Label column (default: artist, label, class, ...)."),
    workers: Optional[int] = typer.Option(None, "--workers", "-w", help="Decoding processes (default: CPU count)."),
    min_count: int = typer.Option(30, "--min-count", help="Name the classes with fewer training images than this."),
    per_class: int = typer.Option(5, "--per-class", help="Images per class on the contact sheet."),
    near_threshold: int = typer.Option(8, "--near-threshold", help="pHash Hamming distance (of 64 bits) for the near-duplicate count."),
    min_size: int = typer.Option(32, "--min-size", help="Count images whose smaller side is below this many pixels."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Decode every image again (the cache lives in $ARTKIT_CACHE_DIR, default ~/.cache/artkit)."),
) -> None:
    """Class balance, image sizes and colour modes, broken files, duplicate ids, empty labels:
    one report.html with the tables and pictures, plus eda.json."""
    from rich.table import Table

    from artkit.eda import EdaConfig, run_eda

    cfg = EdaConfig(pick_data(data, data_opt), out, train_csv, test_csv, id_col, image_col, label_col,
                    workers or os.cpu_count() or 1, min_count, per_class, near_threshold, min_size, not no_cache)
    with scan_progress() as progress:
        r = run_core(run_eda, cfg, progress=progress)
    d = r.data
    ds, cl = d["dataset"], d["classes"]

    summary = Table(show_header=False, show_edge=False, box=None, pad_edge=False)
    summary.add_column(style="bold")
    summary.add_column()
    summary.add_row("data", f"{ds['root']} ({ds['layout']} layout)")
    summary.add_row("train", f"{ds['train_rows']:,} rows, {cl['n_classes']} classes")
    summary.add_row("test", f"{ds['test_rows']:,} images ({ds['test_source']})")
    if cl["imbalance_ratio"]:
        summary.add_row("imbalance", f"{cl['imbalance_ratio']:.1f}x  ({cl['largest']}: {cl['counts'][cl['largest']]}, "
                                     f"{cl['smallest']}: {cl['counts'][cl['smallest']]})")
    geo = d["geometry"]["train"]
    if geo.get("width", {}).get("n"):
        summary.add_row("size (median)", f"{geo['width']['median']:.0f} x {geo['height']['median']:.0f} px train"
                        + (f", {d['geometry']['test']['width']['median']:.0f} x "
                           f"{d['geometry']['test']['height']['median']:.0f} px test"
                           if d["geometry"].get("test", {}).get("width", {}).get("n") else ""))
    colour = d["colour"]["train"]
    if colour:
        summary.add_row("grayscale", f"{colour['grayscale']:,} train images ({colour['stored_gray']:,} stored as "
                                     f"grayscale, {colour['gray_as_rgb']:,} grayscale stored as RGB)")
    sc = d["scan"]
    summary.add_row("scan", f"{sc['files']:,} files in {sc['seconds']:.1f} s ({sc['cache_hits']:,} cached, "
                            f"{sc['decoded']:,} decoded)")
    console.print(summary)

    if cl["below_min"]:
        console.print(f"[yellow]{len(cl['below_min'])} class(es) below --min-count {cl['min_count']}:[/] "
                      + ", ".join(f"{k} ({v})" for k, v in cl["below_min"].items()), soft_wrap=True)

    problems = Table(title="problems", show_edge=False, title_justify="left")
    problems.add_column("what")
    problems.add_column("count", justify="right")
    problems.add_column("examples")
    rows = []
    for which in ("train", "test"):
        for kind, count in d["files"].get(which, {}).get("problems", {}).items():
            ex = [p["id"] for p in r.problems if p["set"] == which and p["kind"] == kind][:3]
            rows.append((f"{which}: {kind} files", count, ", ".join(ex)))
    if d["labels"]["empty"]:
        rows.append(("train: empty labels", d["labels"]["empty"], ", ".join(d["labels"]["empty_ids"][:3])))
    for which in ("train", "test"):
        dup = d["ids"][f"duplicate_{which}"]
        if dup:
            rows.append((f"{which}: duplicate ids", len(dup), ", ".join(list(dup)[:3])))
    dd = d["duplicates"]
    for label, key in (("train: identical-image groups", "exact_groups"), ("train: near-duplicate pairs", "near_pairs"),
                       ("train images also in test", "train_test_leaks")):
        if dd[key]:
            rows.append((label, dd[key], "see artkit clean"))
    for what, count, ex in rows:
        problems.add_row(what, f"{count:,}", ex)
    if rows:
        console.print(problems)
    else:
        console.print("[green]no missing or unreadable files, empty labels, duplicate ids or duplicates found[/]")
    for note in r.notes:
        console.print(f"[dim]note: {note}[/]")
    console.print(f"\n[bold green]report[/]: {r.report_html}")
    console.print(f"  also in {r.out}: eda.json, class_counts.png, hist_*.png, contact_sheet.png")
