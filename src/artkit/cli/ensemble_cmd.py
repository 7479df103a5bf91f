"""``artkit ensemble``: soft-vote checkpoints, logits files and k-fold runs into one submission."""

from __future__ import annotations

import os
from typing import List, Optional

import typer

from artkit.cli.app import app
from artkit.cli.common import (AMP_OPTION, BATCH_SIZE_OPTION, DEVICE_OPTION, ID_COL_OPTION, IMAGE_COL_OPTION,
                                 LABEL_COL_OPTION, TTA_OPTION, WORKERS_OPTION, console, order_note, parse_csv_list,
                                 run_core)


@app.command("ensemble")
def ensemble_command(
    members: List[str] = typer.Argument(..., help="Checkpoints (.pt), logits files from `artkit predict --logits` (.npz), "
                                                  "or k-fold run folders (their fold*/best.pt, and oof.csv for --fit-weights)."),
    data: str = typer.Option("data", "--data", help="Dataset folder with test.csv (and sample_submission.csv)."),
    csv: Optional[str] = typer.Option(None, "--csv", help="Test CSV instead; if it has labels, members and the ensemble are scored on it."),
    out: str = typer.Option("submission.csv", "--out", "-o", help="Submission file, in the test set's order."),
    logits: Optional[str] = typer.Option(None, "--logits", help="Where to save the ensemble's logits (default: beside -o, .npz)."),
    mode: str = typer.Option("logit", "--mode", help="Average logits (logit), probabilities (prob) or log-probabilities (geometric)."),
    weights: Optional[str] = typer.Option(None, "--weights", help="Comma-separated member weights, e.g. 2,1,1."),
    fit_weights: bool = typer.Option(False, "--fit-weights", help="Choose weights maximising out-of-fold macro-F1 of k-fold run members "
                                                                  "(coarse grid, kept only if they win on held-out OOF halves)."),
    tta: str = TTA_OPTION,
    id_col: Optional[str] = ID_COL_OPTION,
    image_col: Optional[str] = IMAGE_COL_OPTION,
    label_col: Optional[str] = LABEL_COL_OPTION,
    batch_size: int = BATCH_SIZE_OPTION,
    device: str = DEVICE_OPTION,
    amp: str = AMP_OPTION,
    workers: Optional[int] = WORKERS_OPTION,
) -> None:
    """Average members (one model in memory at a time) and write the submission and its logits."""
    from rich.table import Table

    from artkit.cli.common import fail
    from artkit.cli.reporter import RichReporter
    from artkit.ensemble import EnsembleConfig, run_ensemble
    from artkit.inference import InferenceOptions

    try:
        w = [float(v) for v in parse_csv_list(weights)] if weights else None
    except ValueError:
        fail(f"--weights must be numbers separated by commas (got '{weights}')")
    cfg = EnsembleConfig(list(members), data, csv, out, logits, mode, w, fit_weights, id_col, image_col, label_col,
                         InferenceOptions(batch_size, device, amp, workers, tta))
    with RichReporter() as reporter:
        r = run_core(run_ensemble, cfg, reporter)
    table = Table(title=f"members ({mode} average)", show_edge=False)
    extra = "macro-F1" if r.label_source else ("OOF macro-F1" if any("oof_macro_f1" in m for m in r.members) else None)
    names = short_names([m["path"] for m in r.members])
    table.add_column("member", overflow="fold")  # wrap rather than cut: the end of a path tells members apart
    for col in ["kind", "weight", "agreement"] + ([extra] if extra else []):
        table.add_column(col, justify="left" if col == "kind" else "right")
    for name, m in zip(names, r.members):
        score = m.get("macro_f1", m.get("oof_macro_f1"))
        table.add_row(name, m["kind"], f"{m['weight']:.3f}", f"{m['agreement']:.3f}",
                      *([f"{score:.4f}" if score is not None else "-"] if extra else []))
    console.print(table)
    if r.fit_report:
        f = r.fit_report
        console.print(f"fitted weights {f['fitted_weights']}: OOF macro-F1 {f['oof_macro_f1_fitted']:.4f} vs equal "
                      f"{f['oof_macro_f1_equal']:.4f}; on held-out halves {f['heldout_macro_f1_fitted']:.4f} vs "
                      f"{f['heldout_macro_f1_equal']:.4f} → using [bold]{f['used']}[/] weights")
    if r.ensemble_macro_f1 is not None:
        console.print(f"[bold]ensemble macro-F1 {r.ensemble_macro_f1:.4f}[/] on {r.label_source}")
    if r.ensemble_oof_macro_f1 is not None:
        console.print(f"[bold]ensemble OOF macro-F1 {r.ensemble_oof_macro_f1:.4f}[/] (members' out-of-fold predictions)")
    console.print(f"[bold green]wrote[/] {r.submission} ({r.rows} rows, {order_note(csv)})\n  logits: {r.logits}")
    if names != [m["path"] for m in r.members]:
        console.print(f"  members: under {common_parent([m['path'] for m in r.members])}")


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
