"""``artkit predict``: a checkpoint over the test set -> submission.csv and logits.npz."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from artkit.engine.checkpoint import load_checkpoint
from artkit.health import submission_warning
from artkit.inference.config import PredictConfig
from artkit.inference.runner import run_checkpoint
from artkit.inference.submission import (
    label_targets,
    labelled_csv,
    load_test_table,
    refuse_overwriting_inputs,
    save_logits,
    submission_columns,
    write_submission,
)
from artkit.metrics import summary_metrics
from artkit.progress import Reporter


@dataclass(kw_only=True)
class PredictResult:
    submission: Path
    logits: Path
    rows: int
    counts: dict[str, int]
    tta: str
    checkpoint: str
    warning: str | None = None  # one class takes most of the submission (see artkit.health)
    scores: dict[str, float] | None = None  # accuracy and macro-F1 on a labelled --csv


def logits_path_for(out: str, logits: str | None) -> Path:
    """Where logits go: ``logits`` if given, else beside the submission with ``.npz``."""
    return Path(logits) if logits else Path(out).with_suffix(".npz")


def run_predict(cfg: PredictConfig, reporter: Reporter | None = None) -> PredictResult:
    logits_path = logits_path_for(cfg.out, cfg.logits)
    refuse_overwriting_inputs(
        [cfg.out, logits_path],
        [cfg.checkpoint, cfg.csv, Path(cfg.data) / "test.csv", Path(cfg.data) / "sample_submission.csv"],
    )
    ckpt = load_checkpoint(cfg.checkpoint)
    labelled = labelled_csv(cfg.csv, cfg.columns) if cfg.csv else None
    table, source = (labelled[0], None) if labelled else load_test_table(cfg.data, cfg.csv, cfg.columns)
    classes = list(ckpt["classes"])
    y = label_targets(table, classes) if labelled else None
    ids = table["id"].tolist()
    label_name = cfg.label_col or ckpt["config"].get("label_col") or (source.label_col if source else None)
    # a --csv given on purpose sets the rows and their order: sample_submission.csv does not judge them
    id_col, label_col = submission_columns(None if cfg.csv else source, label_name, ids)
    logits = run_checkpoint(ckpt, table["path"].tolist(), cfg, "predict", reporter, source=cfg.checkpoint)
    labels = [classes[i] for i in logits.argmax(1)]
    save_logits(logits_path, ids, classes, logits)
    write_submission(Path(cfg.out), ids, labels, id_col, label_col)
    counts = pd.Series(labels).value_counts().to_dict()
    return PredictResult(
        submission=Path(cfg.out),
        logits=logits_path,
        rows=len(ids),
        counts={str(k): int(v) for k, v in counts.items()},
        tta=cfg.tta,
        checkpoint=cfg.checkpoint,
        warning=submission_warning(labels, len(classes)),
        scores=summary_metrics(y, logits.argmax(1)) if y is not None else None,
    )
