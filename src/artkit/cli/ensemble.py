"""``artkit ensemble``: soft-vote checkpoints, logits files and k-fold runs into one submission."""

from __future__ import annotations

import os

from artkit.cli.app import app, console, order_note, run_core, show
from artkit.cli.commands import config_command
from artkit.inference.config import EnsembleConfig


@config_command(
    app,
    "ensemble",
    EnsembleConfig,
    epilog="Example: artkit ensemble runs/kfold runs/b3/best.pt --data data/ --tta hflip -o submission.csv",
)
def ensemble_command(cfg: EnsembleConfig, explicit: set[str]) -> None:
    """Average members (one model in memory at a time) and write the submission and its logits."""
    from rich.table import Table

    from artkit.cli.progress import RichReporter
    from artkit.inference.ensemble import run_ensemble

    with RichReporter() as reporter:
        r = run_core(run_ensemble, cfg, reporter)
    table = Table(title=f"members ({cfg.mode} average)", show_edge=False)
    extra = "macro-F1" if r.label_source else ("OOF macro-F1" if any("oof_macro_f1" in m for m in r.members) else None)
    names = short_names([m["path"] for m in r.members])
    table.add_column("member", overflow="fold")  # wrap rather than cut: the end of a path tells members apart
    for col in ["kind", "weight", "agreement"] + ([extra] if extra else []):
        table.add_column(col, justify="left" if col == "kind" else "right")
    for name, m in zip(names, r.members):
        score = m.get("macro_f1", m.get("oof_macro_f1"))
        table.add_row(
            name,
            m["kind"],
            f"{m['weight']:.3f}",
            f"{m['agreement']:.3f}",
            *([f"{score:.4f}" if score is not None else "-"] if extra else []),
        )
    console.print(table)
    if r.fit_report:
        f = r.fit_report
        show(
            "fitted weights {}: OOF macro-F1 {} vs equal {}; on held-out halves {} vs {} → using [bold]{}[/] weights",
            f["fitted_weights"],
            f"{f['oof_macro_f1_fitted']:.4f}",
            f"{f['oof_macro_f1_equal']:.4f}",
            f"{f['heldout_macro_f1_fitted']:.4f}",
            f"{f['heldout_macro_f1_equal']:.4f}",
            f["used"],
        )
    if r.ensemble_macro_f1 is not None:
        show("[bold]ensemble macro-F1 {}[/] on {}", f"{r.ensemble_macro_f1:.4f}", r.label_source)
    if r.ensemble_oof_macro_f1 is not None:
        show("[bold]ensemble OOF macro-F1 {}[/] (members' out-of-fold predictions)", f"{r.ensemble_oof_macro_f1:.4f}")
    show("[bold green]wrote[/] {} ({} rows, {})\n  logits: {}", r.submission, r.rows, order_note(cfg.csv), r.logits)
    if names != [m["path"] for m in r.members]:
        console.print(f"  members: under {common_parent([m['path'] for m in r.members])}")
    if r.warning:
        show("[bold red]warning:[/] {}", r.warning, soft_wrap=True)


def short_names(paths: list[str]) -> list[str]:
    """Member paths relative to their common folder (fold0/best.pt, fold1/best.pt), as given when alone."""
    parent = common_parent(paths)
    if len(paths) < 2 or parent in ("", "."):
        return list(paths)
    return [os.path.relpath(p, parent) for p in paths]


def common_parent(paths: list[str]) -> str:
    try:
        return os.path.commonpath([os.path.dirname(os.path.abspath(p)) for p in paths])
    except ValueError:  # different drives
        return ""
