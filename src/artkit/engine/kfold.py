"""k-fold training: K complete fold runs under one parent, out-of-fold predictions, CV score."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from artkit.engine.budget import TimeBudget
from artkit.engine.config import TrainConfig, parse_duration
from artkit.engine.distributed import broadcast, from_env
from artkit.engine.finish import TrainResult
from artkit.engine.runs import new_run_dir, read_results, read_summary, remove_run_dir, run_finished
from artkit.engine.trainer import fit_new, resume_run
from artkit.errors import ArtkitError
from artkit.metrics import softmax, summary_metrics
from artkit.options import load_config, save_config
from artkit.progress import Reporter
from artkit.reader import load_npz, read_csv_text
from artkit.writer import ensure_dir, write_csv, write_json

HEADER = "artkit train options of this k-fold run"


def fold_dir(parent: Path, i: int) -> Path:
    return parent / f"fold{i}"


def joined_parent(cfg: TrainConfig) -> Path:
    """``--fold i`` alone joins (or starts) the k-fold run of the same name, so folds can be trained by
    separate commands (or machines)."""
    parent = Path(cfg.out) / (cfg.name or "kfold")
    if not parent.exists():
        ensure_dir(parent)
        save_config(replace(cfg, fold=None), parent / "config.yaml", header=HEADER)
        return parent
    saved = load_config(TrainConfig, parent / "config.yaml") if (parent / "config.yaml").exists() else None
    if saved is None or saved.folds != cfg.folds or saved.seed != cfg.seed:
        raise ArtkitError(
            f"{parent} exists and is not a {cfg.folds}-fold run with seed {cfg.seed}", "pick another --name"
        )
    if fold_dir(parent, cfg.fold).exists():
        raise ArtkitError(
            f"{fold_dir(parent, cfg.fold)} already exists", f"continue it with --resume {fold_dir(parent, cfg.fold)}"
        )
    return parent


def train_folds(cfg: TrainConfig, reporter: Reporter, budget: TimeBudget | None = None) -> TrainResult:
    """A new k-fold run: every fold, or only ``cfg.fold``."""
    dist = from_env()  # with several processes, rank 0 makes the folders
    if cfg.fold is not None:
        folder = broadcast(fold_dir(joined_parent(cfg), cfg.fold) if dist.main else None, dist)
        if dist.main:
            folder.mkdir()
        return fit_new(cfg, folder, reporter, budget)  # a single fold's --time is its own budget
    parent = broadcast(new_run_dir(cfg.out, cfg.name) if dist.main else None, dist)
    if dist.main:
        save_config(cfg, parent / "config.yaml", header=HEADER)
    try:
        return train_all_folds(cfg, parent, reporter, budget=budget)
    except BaseException:
        if dist.main and not any(parent.glob("fold*/last.pt")):
            remove_run_dir(parent)  # nothing finished: a failed start leaves nothing
        raise


def _result_from_run(run_dir: Path) -> TrainResult:
    s = read_summary(run_dir)
    return TrainResult(
        run_dir=run_dir,
        best_path=run_dir / "best.pt",
        last_path=run_dir / "last.pt",
        best_epoch=s["best_epoch"],
        best_metrics=s["best_metrics"],
        epochs_run=s["epochs_run"],
        stopped_early=s["stopped_early"],
        skipped_bad=s["skipped_bad"],
        warning=s.get("warning"),
        rows=read_results(run_dir / "results.csv"),
    )


def _train_fold(
    cfg: TrainConfig, parent: Path, i: int, reporter: Reporter, resuming: bool, budget: TimeBudget | None
) -> TrainResult:
    folder = fold_dir(parent, i)
    fcfg = replace(cfg, fold=i, resume=None)
    reporter.message(f"fold {i + 1}/{cfg.folds} → {folder}")
    if resuming and folder.exists() and run_finished(folder, cfg.epochs):
        reporter.message(f"fold {i} already finished: kept")
        return _result_from_run(folder)
    if resuming and (folder / "last.pt").exists():
        return resume_run(fcfg, folder, reporter, budget)
    if from_env().main:
        remove_run_dir(folder)  # started but no epoch finished: nothing to keep
        folder.mkdir()
    return fit_new(fcfg, folder, reporter, budget)


def train_all_folds(
    cfg: TrainConfig, parent: Path, reporter: Reporter, resuming: bool = False, budget: TimeBudget | None = None
) -> TrainResult:
    """Train every fold into ``parent/fold{i}``; on resume, finished folds are kept and an
    interrupted fold continues from its last.pt."""
    total = budget or (TimeBudget(seconds=parse_duration(cfg.time)) if cfg.time else None)
    results = []
    for i in range(cfg.folds):  # a time budget is for all folds: each gets an equal share of what is left
        budget = total.share(cfg.folds - i) if total is not None else None
        results.append(_train_fold(cfg, parent, i, reporter, resuming, budget))
    if not from_env().main:  # rank 0 writes the out-of-fold file; the others return what they trained
        return TrainResult(run_dir=parent, folds=results)
    save_config(cfg, parent / "config.yaml", header=HEADER)
    cv = write_oof(parent, cfg.folds)
    return TrainResult(
        run_dir=parent,
        epochs_run=sum(r.epochs_run for r in results),
        skipped_bad=sorted({p for r in results for p in r.skipped_bad}),
        folds=results,
        cv=cv,
    )


def _fold_predictions(parent: Path, i: int) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    path = fold_dir(parent, i) / "val_predictions.npz"
    if not path.exists():
        raise ArtkitError(f"{path} is missing", f"finish fold {i} (artkit train --resume {parent})")
    z = load_npz(path, ("ids", "classes", "logits", "targets"))
    return z["ids"].tolist(), z["classes"].tolist(), z["logits"], z["targets"]


def write_oof(parent: Path, folds: int) -> dict:
    """Gather each fold's best-epoch validation predictions into ``oof.csv`` and ``cv.json``."""
    parts, per_fold = [], []
    classes: list[str] | None = None
    for i in range(folds):
        ids, cls, logits, y = _fold_predictions(parent, i)
        classes = classes or cls
        if cls != classes:
            raise ArtkitError(f"fold {i} has different classes from fold 0", "retrain the folds from one dataset")
        frame = pd.DataFrame(softmax(logits), columns=classes)
        frame.insert(0, "label", [classes[t] for t in y])
        frame.insert(0, "id", ids)
        parts.append(frame)
        m = summary_metrics(y, logits.argmax(1))
        per_fold.append({"fold": i, "val_macro_f1": m["macro_f1"], "val_acc": m["acc"], "rows": len(ids)})
    oof = pd.concat(parts, ignore_index=True)
    rank = {k: n for n, k in enumerate(read_csv_text(fold_dir(parent, 0) / "split.csv")["id"])}
    oof = oof.sort_values("id", key=lambda s: s.map(rank)).reset_index(drop=True)
    write_csv(parent / "oof.csv", oof, float_format="%.6g")
    y_all = oof["label"].map({c: k for k, c in enumerate(classes)}).to_numpy()
    overall = summary_metrics(y_all, oof[classes].to_numpy().argmax(1))
    f1s = np.array([f["val_macro_f1"] for f in per_fold])
    cv = {
        "folds": per_fold,
        "cv_macro_f1_mean": float(f1s.mean()),
        "cv_macro_f1_std": float(f1s.std(ddof=0)),
        "oof_macro_f1": overall["macro_f1"],
        "oof_acc": overall["acc"],
        "rows": len(oof),
    }
    write_json(parent / "cv.json", cv)
    return cv
