"""``artkit eda``: options -> EdaConfig -> artkit.qa.eda.run_eda -> a Rich summary."""

from __future__ import annotations

from artkit.cli.app import app, console, run_core, scan_progress, show
from artkit.cli.commands import config_command
from artkit.qa.config import EdaConfig


@config_command(app, "eda", EdaConfig, epilog="Example: artkit eda data/ --out eda")
def eda_command(cfg: EdaConfig, explicit: set[str]) -> None:
    """Class balance, image sizes and colour modes, broken files, duplicate ids, empty labels:
    one report.html with the tables and pictures, plus eda.json."""
    from artkit.qa.eda import run_eda

    with scan_progress() as progress:
        r = run_core(run_eda, cfg, progress=progress)
    _print_summary(r.data)
    _print_problems(r)
    for note in r.notes:
        show("[dim]note: {}[/]", note)
    show("\n[bold green]report[/]: {}", r.report_html)
    console.print(
        f"  also in {r.out}: eda.json, class_counts.png, hist_*.png, contact_sheet.png"
        + (", pairs.png (look-alike pairs)" if "pairs" in r.figures else "")
    )
    rec = r.data["recommended"]
    chosen = ", ".join(f"{k} {v}" for k, v in rec["options"].items() if k in rec["reasons"] and k != "data")
    show("[bold]recommended[/]: {} → artkit train --config {}", chosen, r.out / rec["file"])
    for note in rec["notes"]:
        show("  [yellow]before training:[/] {}", note, soft_wrap=True)


def _print_summary(d: dict) -> None:
    from rich.table import Table

    ds, cl, sc = d["dataset"], d["classes"], d["scan"]
    summary = Table(show_header=False, show_edge=False, box=None, pad_edge=False)
    summary.add_column(style="bold")
    summary.add_column()
    summary.add_row("data", f"{ds['root']} ({ds['layout']} layout)")
    summary.add_row("train", f"{ds['train_rows']:,} rows, {cl['n_classes']} classes")
    summary.add_row("test", f"{ds['test_rows']:,} images ({ds['test_source']})")
    if cl["imbalance_ratio"]:
        big, small = cl["largest"], cl["smallest"]
        summary.add_row(
            "imbalance", f"{cl['imbalance_ratio']:.1f}x  ({big}: {cl['counts'][big]}, {small}: {cl['counts'][small]})"
        )
    sizes = [
        f"{g['width']['median']:.0f} x {g['height']['median']:.0f} px {which}"
        for which, g in d["geometry"].items()
        if g.get("width", {}).get("n")
    ]
    if sizes:
        summary.add_row("size (median)", ", ".join(sizes))
    colour = d["colour"]["train"]
    if colour:
        summary.add_row(
            "grayscale",
            f"{colour['grayscale']:,} train images ({colour['stored_gray']:,} stored as "
            f"grayscale, {colour['gray_as_rgb']:,} grayscale stored as RGB)",
        )
    summary.add_row(
        "scan",
        f"{sc['files']:,} files in {sc['seconds']:.1f} s ({sc['cache_hits']:,} cached, {sc['decoded']:,} decoded)",
    )
    console.print(summary)
    if cl["below_min"]:
        show(
            "[yellow]{} class(es) below --min-count {}:[/] {}",
            len(cl["below_min"]),
            cl["min_count"],
            ", ".join(f"{k} ({v})" for k, v in cl["below_min"].items()),
            soft_wrap=True,
        )


def _problem_rows(r) -> list[tuple[str, int, str]]:
    d = r.data
    rows = []
    for which in ("train", "test"):
        for kind, count in d["files"].get(which, {}).get("problems", {}).items():
            ex = [p["id"] for p in r.problems if p["set"] == which and p["kind"] == kind][:3]
            rows.append((f"{which}: {kind} files", count, ", ".join(ex)))
    if d["labels"]["empty"]:
        rows.append(("train: empty labels", d["labels"]["empty"], ", ".join(d["labels"]["empty_ids"][:3])))
    if d["labels"]["similar"]:
        pairs = "; ".join(f"{a!r} ~ {b!r}" for a, b in d["labels"]["similar"][:2])
        rows.append(("near-identical class names", len(d["labels"]["similar"]), pairs))
    if d["paths"]["outside"]:
        rows.append(("image paths outside the data folder", d["paths"]["outside"], d["paths"]["example"]))
    for which in ("train", "test"):
        dup = d["ids"][f"duplicate_{which}"]
        if dup:
            rows.append((f"{which}: duplicate ids", len(dup), ", ".join(list(dup)[:3])))
    dd = d["duplicates"]
    for label, key in (
        ("train: identical-image groups", "exact_groups"),
        ("train: near-duplicate pairs", "near_pairs"),
        ("train images also in test", "train_test_leaks"),
    ):
        if dd[key]:
            rows.append((label, dd[key], "see artkit clean"))
    return rows


def _print_problems(r) -> None:
    from rich.table import Table

    rows = _problem_rows(r)
    if not rows:
        show("[green]no missing or unreadable files, empty labels, duplicate ids or duplicates found[/]")
        return
    problems = Table(title="problems", show_edge=False, title_justify="left")
    problems.add_column("what")
    problems.add_column("count", justify="right")
    problems.add_column("examples")
    for what, count, ex in rows:
        problems.add_row(what, f"{count:,}", ex)
    console.print(problems)
