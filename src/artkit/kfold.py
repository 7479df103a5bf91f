"""k-fold training: K complete fold runs under one parent, out-of-fold predictions, CV score."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from artkit.config import TrainConfig, config_from_mapping, load_yaml, save_yaml
from artkit.engine import softmax
from artkit.errors import ArtkitError
from artkit.metrics import summary_metrics
from artkit.reporting import Reporter
from artkit.runs import new_run_dir, read_json, read_results, write_json


def kfold_parent_dir(cfg: TrainConfig) -> Path:
    """The parent run folder. ``--fold i`` alone joins an existing k-fold run of the same name,
    so folds can be trained by separate commands (or machines)."""
    if cfg.fold is None:
        parent = new_run_dir(cfg.out, cfg.name)
        save_yaml(cfg.to_dict(), parent / "config.yaml")
        return parent
    parent = Path(cfg.out) / (cfg.name or "kfold")
    if parent.exists():
        saved = config_from_mapping(load_yaml(parent / "config.yaml")) if (parent / "config.yaml").exists() else None
        if saved is None or saved.folds != cfg.folds or saved.seed != cfg.seed:
            raise ArtkitError(f"{parent} exists and is not a {cfg.folds}-fold run with seed {cfg.seed}",
                              "pick another --name")
        if (parent / f"fold{cfg.fold}").exists():
            raise ArtkitError(f"{parent / f'fold{cfg.fold}'} already exists",
                              f"continue it with --resume {parent / f'fold{cfg.fold}'}")
    else:
        parent.mkdir(parents=True)
        save_yaml(replace(cfg, fold=None).to_dict(), parent / "config.yaml")
    return parent


def _result_from_run(run_dir: Path):
    from artkit.trainer import TrainResult

    s = read_json(run_dir / "summary.json")
    return TrainResult(run_dir, run_dir / "best.pt", run_dir / "last.pt", s["best_epoch"], s["best_metrics"],
                       s["epochs_run"], s["stopped_early"], s["skipped_bad"], read_results(run_dir / "results.csv"))


def train_all_folds(cfg: TrainConfig, parent: Path, reporter: Reporter, resuming: bool = False):
    """Train every fold into ``parent/fold{i}``; on resume, finished folds are kept and an
    interrupted fold continues from its last.pt."""
    from artkit.trainer import _run_finished, fit

    results = []
    for i in range(cfg.folds):
        fold_dir = parent / f"fold{i}"
        fcfg = replace(cfg, fold=i, resume=None)
        reporter.message(f"fold {i + 1}/{cfg.folds} → {fold_dir}")
        if resuming and fold_dir.exists() and _run_finished(fold_dir, cfg.epochs):
            reporter.message(f"fold {i} already finished: kept")
            results.append(_result_from_run(fold_dir))
            continue
        if resuming and (fold_dir / "last.pt").exists():
            save_yaml(fcfg.to_dict(), fold_dir / "config.yaml")
            (fold_dir / "summary.json").unlink(missing_ok=True)
            results.append(fit(fcfg, fold_dir, reporter, resuming=True))
            continue
        if fold_dir.exists():  # started but no epoch finished: nothing to keep
            shutil.rmtree(fold_dir)
        fold_dir.mkdir()
        results.append(fit(fcfg, fold_dir, reporter))
    save_yaml(cfg.to_dict(), parent / "config.yaml")
    cv = write_oof(parent, cfg.folds)
    from artkit.trainer import TrainResult

    return TrainResult(parent, None, None, None, {}, sum(r.epochs_run for r in results), False,
                       sorted({p for r in results for p in r.skipped_bad}), [], results, cv)


def write_oof(parent: Path, folds: int) -> dict:
    """Gather each fold's best-epoch validation predictions into ``oof.csv`` and ``cv.json``."""
    parts, per_fold = [], []
    classes: list[str] | None = None
    for i in range(folds):
        path = parent / f"fold{i}" / "val_predictions.npz"
        if not path.exists():
            raise ArtkitError(f"{path} is missing", f"finish fold {i} (artkit train --resume {parent})")
        with np.load(path, allow_pickle=False) as z:
            ids, cls, logits, y = z["ids"].tolist(), z["classes"].tolist(), z["logits"], z["targets"]
        classes = classes or cls
        if cls != classes:
            raise ArtkitError(f"fold {i} has different classes from fold 0", "retrain the folds from one dataset")
        probs = softmax(logits)
        frame = pd.DataFrame(probs, columns=classes)
        frame.insert(0, "label", [classes[t] for t in y])
        frame.insert(0, "id", ids)
        parts.append(frame)
        m = summary_metrics(y, logits.argmax(1))
        per_fold.append({"fold": i, "val_macro_f1": m["macro_f1"], "val_acc": m["acc"], "rows": len(ids)})
    oof = pd.concat(parts, ignore_index=True)
    order = pd.read_csv(parent / "fold0" / "split.csv", dtype=str, keep_default_na=False, encoding="utf-8")["id"]
    rank = {k: n for n, k in enumerate(order)}
    oof = oof.sort_values("id", key=lambda s: s.map(rank)).reset_index(drop=True)
    oof.to_csv(parent / "oof.csv", index=False, encoding="utf-8", float_format="%.6g")
    y_all = oof["label"].map({c: k for k, c in enumerate(classes)}).to_numpy()
    overall = summary_metrics(y_all, oof[classes].to_numpy().argmax(1))
    f1s = np.array([f["val_macro_f1"] for f in per_fold])
    cv = {"folds": per_fold, "cv_macro_f1_mean": float(f1s.mean()), "cv_macro_f1_std": float(f1s.std(ddof=0)),
          "oof_macro_f1": overall["macro_f1"], "oof_acc": overall["acc"], "rows": len(oof)}
    write_json(parent / "cv.json", cv)
    return cv
