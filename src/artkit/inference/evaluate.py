"""``artkit eval``: score a checkpoint on labelled images (its run's validation split by default)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from artkit.data.layout import discover, table_from_csv
from artkit.engine.checkpoint import load_checkpoint
from artkit.errors import ArtkitError
from artkit.inference.config import EvalConfig
from artkit.inference.eval_page import Scored
from artkit.inference.runner import run_checkpoint
from artkit.metrics import confusion, most_confused, per_class, summary_metrics
from artkit.progress import Reporter
from artkit.reader import read_csv_text
from artkit.writer import ensure_dir, write_json


@dataclass(kw_only=True)
class EvalResult:
    metrics: dict[str, float]
    per_class: list[dict]
    confused: list[dict]
    rows: int
    source: str
    out_dir: Path
    files: list[Path]
    tta: str = "none"  # the views the score was computed with
    note: str | None = None  # why the score differs from the run's own on the same rows


def labelled_rows(cfg: EvalConfig) -> tuple[pd.DataFrame, str, str]:
    """(id, path, label) rows to score, a description of where they came from, and the stage."""
    if cfg.csv:
        return table_from_csv(cfg.csv, cfg.columns, labelled=True), str(cfg.csv), "predict"
    if cfg.data:
        return discover(cfg.data, columns=cfg.columns).require_train(), f"{cfg.data} (all labelled rows)", "predict"
    split_path = Path(cfg.checkpoint).parent / "split.csv"
    if not split_path.exists():
        raise ArtkitError(
            f"no split.csv beside {cfg.checkpoint}, so the run's validation rows are unknown",
            "pass --data DIR or --csv FILE with labelled images",
        )
    split = read_csv_text(split_path)
    val = split[split["split"] == "val"]
    if len(val) == 0:
        raise ArtkitError(
            f"the run of {cfg.checkpoint} has no validation rows (trained with --full)",
            "pass --data DIR or --csv FILE with labelled images",
        )
    return val, f"validation split of {split_path.parent}", "val"


def targets_of(rows: pd.DataFrame, classes: list[str]) -> np.ndarray:
    unknown = sorted(set(rows["label"]) - set(classes))
    if unknown:
        raise ArtkitError(
            f"labels not among the checkpoint's {len(classes)} classes: {', '.join(unknown[:5])}"
            + (" ..." if len(unknown) > 5 else ""),
            "evaluate on data with the classes the model was trained on (check spelling)",
        )
    index = {c: i for i, c in enumerate(classes)}
    return np.array([index[v] for v in rows["label"]], dtype=np.int64)


def write_eval_files(out: Path, cfg: EvalConfig, ckpt: dict[str, Any], described: str, scored: Scored) -> EvalResult:
    """metrics.json, the confusion matrices, and report.html with review.csv."""
    from artkit.inference.eval_page import write_report
    from artkit.plots import plot_confusion

    classes, y, pred = scored.classes, scored.y, scored.pred
    metrics = summary_metrics(y, pred)
    pc = per_class(y, pred, classes)
    cm = confusion(y, pred, len(classes))
    confused = most_confused(cm, classes, 10)
    files = [
        out / "metrics.json",
        out / "report.html",
        out / "confusion_matrix.png",
        out / "confusion_matrix_normalized.png",
        out / "review.csv",
    ]
    write_json(
        files[0],
        {
            "checkpoint": str(cfg.checkpoint),
            "data": described,
            "rows": len(y),
            "tta": cfg.tta,
            **metrics,
            "per_class": pc,
            "most_confused": confused,
        },
    )
    plot_confusion(cm, classes, files[2])
    plot_confusion(cm, classes, files[3], normalize=True)
    write_report(
        out,
        scored,
        {**metrics, "rows": len(y), "per_class": pc},
        confused,
        described,
        cfg.tta,
        ckpt,
        cfg.checkpoint,
        cfg.workers,
        cfg.device,
    )
    return EvalResult(
        metrics=metrics, per_class=pc, confused=confused, rows=len(y), source=described, out_dir=out, files=files
    )


def run_eval(cfg: EvalConfig, reporter: Reporter | None = None) -> EvalResult:
    ckpt = load_checkpoint(cfg.checkpoint)
    rows, described, stage = labelled_rows(cfg)
    classes = list(ckpt["classes"])
    y = targets_of(rows, classes)
    features: list = []
    logits = run_checkpoint(ckpt, rows["path"].tolist(), cfg, stage, reporter, source=cfg.checkpoint, features=features)
    out = ensure_dir(cfg.out or Path(cfg.checkpoint).parent / f"eval_{Path(cfg.checkpoint).stem}")
    scored = Scored(
        rows=rows.reset_index(drop=True),
        classes=classes,
        y=y,
        logits=logits,
        features=features[0] if features else None,
    )
    result = write_eval_files(out, cfg, ckpt, described, scored)
    result.tta = cfg.tta
    if stage == "val":
        result.note = differs_from_run(ckpt, result.metrics["macro_f1"], cfg.tta)
    return result


def differs_from_run(ckpt: dict[str, Any], macro_f1: float, tta: str) -> str | None:
    """One line on why eval's score on the run's own validation rows is not the run's (its best epoch scored
    them without TTA), or None when they agree."""
    own = (ckpt.get("metrics") or {}).get("val_macro_f1")
    if own is None or abs(own - macro_f1) < 5e-4:
        return None
    epoch = ckpt.get("epoch")
    if tta != "none":
        return (
            f"the run scored macro-F1 {own:.4f} on these rows at epoch {epoch} without TTA; this score uses "
            f"--tta {tta} (--tta none to compare)"
        )
    return f"the run scored macro-F1 {own:.4f} on these rows at epoch {epoch}; here the images were loaded afresh"
