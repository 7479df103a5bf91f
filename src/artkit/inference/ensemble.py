"""``artkit ensemble``: average checkpoints, saved logits and k-fold runs into one submission."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from artkit.engine.checkpoint import load_checkpoint
from artkit.errors import ArtkitError
from artkit.health import submission_warning
from artkit.inference.config import ENSEMBLE_MODES, EnsembleConfig
from artkit.inference.predict import logits_path_for
from artkit.inference.runner import refuse_non_finite, run_checkpoints
from artkit.inference.submission import (
    label_targets,
    labelled_csv,
    load_logits,
    load_test_table,
    refuse_overwriting_inputs,
    save_logits,
    submission_columns,
    write_submission,
)
from artkit.metrics import softmax, summary_metrics
from artkit.progress import Reporter
from artkit.reader import load_yaml, read_csv_text


@dataclass(kw_only=True)
class Member:
    path: str
    kind: str  # "checkpoint", "logits" or "kfold"
    classes: list[str]
    logits: np.ndarray  # aligned to the test ids and the ensemble's class order
    oof: pd.DataFrame | None = None  # k-fold members: id, label, one probability column per class


@dataclass(kw_only=True)
class EnsembleResult:
    submission: Path
    logits: Path
    rows: int
    weights: list[float]
    members: list[dict]  # path, kind, agreement, macro_f1 (when labels are known)
    ensemble_macro_f1: float | None
    label_source: str | None
    fit_report: dict | None
    ensemble_oof_macro_f1: float | None = None  # when every member is a k-fold run with oof.csv
    warning: str | None = None  # one class takes most of the submission (see artkit.health)


def combine(logits: list[np.ndarray], weights: np.ndarray, mode: str) -> np.ndarray:
    """Weighted average in logit, probability or log-probability (geometric) space; returns logits."""
    w = np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    if mode == "logit":
        return sum(wi * li for wi, li in zip(w, logits)).astype(np.float32)
    if mode == "prob":
        return np.log(np.clip(sum(wi * softmax(li) for wi, li in zip(w, logits)), 1e-12, None)).astype(np.float32)
    if mode == "geometric":
        return sum(wi * np.log(np.clip(softmax(li), 1e-12, None)) for wi, li in zip(w, logits)).astype(np.float32)
    raise ArtkitError(f"unknown --mode '{mode}'", f"choose one of: {', '.join(ENSEMBLE_MODES)}")


def _align_classes(path: str, classes: list[str], reference: list[str], logits: np.ndarray) -> np.ndarray:
    if set(classes) != set(reference):
        only_here = sorted(set(classes) - set(reference))
        only_ref = sorted(set(reference) - set(classes))
        raise ArtkitError(
            f"{path} has a different class set from the first member: "
            f"only in {path}: {only_here or 'none'}; only in the first: {only_ref or 'none'}",
            "ensemble models trained on the same classes",
        )
    order = [classes.index(c) for c in reference]
    return logits[:, order]


def _align_ids(path: str, ids: list[str], test_ids: list[str], logits: np.ndarray) -> np.ndarray:
    if ids == test_ids:
        return logits
    if len(ids) != len(test_ids) or set(ids) != set(test_ids):
        missing = sorted(set(test_ids) - set(ids))[:3]
        extra = sorted(set(ids) - set(test_ids))[:3]
        raise ArtkitError(
            f"the ids in {path} differ from the test set (missing: {missing or 'none'}; "
            f"not in the test set: {extra or 'none'}; {len(ids)} vs {len(test_ids)} rows)",
            "re-run `artkit predict --logits` on this test set",
        )
    position = {k: i for i, k in enumerate(ids)}
    return logits[[position[k] for k in test_ids]]


def _kfold_checkpoints(run: Path) -> list[Path]:
    """Every fold's best.pt; a fold without one is an error, never an ensemble of fewer folds than the run has."""
    folds = sorted((p for p in run.glob("fold*") if p.is_dir() and p.name[4:].isdigit()), key=lambda p: int(p.name[4:]))
    if not folds:
        raise ArtkitError(f"{run} has no fold*/best.pt", "pass checkpoints, logits files or a k-fold run folder")
    planned = _planned_folds(run) or len(folds)
    missing = [f"fold{i}" for i in range(planned) if not (run / f"fold{i}" / "best.pt").is_file()]
    if missing:
        raise ArtkitError(
            f"{run} is a {planned}-fold run, but {', '.join(missing)} has no best.pt; "
            "an ensemble of the other folds would silently be a different model",
            f"finish the run (artkit train --resume {run}), or pass the finished folds' best.pt files yourself",
        )
    return [run / f"fold{i}" / "best.pt" for i in range(planned)]


def _planned_folds(run: Path) -> int | None:
    """The ``folds`` of a k-fold run's config.yaml (None when it cannot be read)."""
    from artkit.reader import load_yaml

    try:
        folds = load_yaml(run / "config.yaml").get("folds")
    except ArtkitError:
        return None
    return folds if isinstance(folds, int) and not isinstance(folds, bool) and folds >= 2 else None


def _kfold_member(p: Path, computed: dict[str, tuple[list[str], np.ndarray]]):
    parts, classes = [], None
    for ck_path in _kfold_checkpoints(p):
        fold_classes, logits = computed[str(ck_path)]
        classes = classes or fold_classes
        parts.append(_align_classes(str(ck_path), fold_classes, classes, logits))
    oof = read_csv_text(p / "oof.csv") if (p / "oof.csv").exists() else None
    return classes, np.mean(parts, axis=0).astype(np.float32), oof


def checkpoints_of(members: list[str]) -> list[str]:
    """Every checkpoint the members run: themselves, or a k-fold run folder's fold*/best.pt (logits files none)."""
    out = []
    for m in members:
        p = Path(m)
        if p.is_dir():
            out += [str(f) for f in _kfold_checkpoints(p)]
        elif p.suffix != ".npz":
            out.append(m)
    return out


def load_member(
    path: str, test: pd.DataFrame, reference: list[str] | None, computed: dict[str, tuple[list[str], np.ndarray]]
) -> Member:
    """Logits of one member over the test set: a checkpoint's or a k-fold run's (the logit mean of its folds)
    from ``computed`` (:func:`artkit.inference.runner.run_checkpoints`), or a logits file's."""
    p = Path(path)
    oof = None
    if p.is_dir():
        kind = "kfold"
        classes, logits, oof = _kfold_member(p, computed)
    elif p.suffix == ".npz":
        kind = "logits"
        ids, classes, logits = load_logits(p)
        refuse_non_finite(logits, path)
        logits = _align_ids(path, ids, test["id"].tolist(), logits)
    else:
        kind = "checkpoint"
        classes, logits = computed[path]
    reference = reference or classes
    return Member(
        path=path, kind=kind, classes=reference, logits=_align_classes(path, classes, reference, logits), oof=oof
    )


# --------------------------------------------------------------------------- weight fitting


def _simplex_grid(m: int, step: float) -> np.ndarray:
    n = int(round(1 / step))
    return np.array([c for c in itertools.product(range(n + 1), repeat=m) if sum(c) == n], dtype=np.float64) / n


def _search_weights(probs: list[np.ndarray], y: np.ndarray, mode: str) -> np.ndarray:
    """Best weights on a coarse simplex grid (step 0.1; 0.2 beyond four members): few enough
    candidates that the choice cannot memorise the OOF rows."""
    logits = [np.log(np.clip(p, 1e-12, None)) for p in probs]
    grid = _simplex_grid(len(probs), 0.1 if len(probs) <= 4 else 0.2)
    best_w, best_f1 = np.full(len(probs), 1 / len(probs)), -1.0
    for w in grid:
        f1 = summary_metrics(y, combine(logits, w, mode).argmax(1))["macro_f1"]
        if f1 > best_f1 + 1e-12:
            best_w, best_f1 = w, f1
    return best_w


def oof_arrays(members: list[Member], classes: list[str]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Labels and each member's out-of-fold probabilities (columns in ``classes`` order), rows aligned by id."""
    ids = members[0].oof["id"].tolist()
    for m in members[1:]:
        if sorted(m.oof["id"]) != sorted(ids):
            raise ArtkitError(
                f"{m.path}/oof.csv covers other rows than {members[0].path}/oof.csv",
                "combine out-of-fold predictions of k-fold runs on the same training data",
            )
    frames = [m.oof.set_index("id").loc[ids] for m in members]
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted(set(frames[0]["label"]) - set(index))
    if unknown:
        raise ArtkitError(f"{members[0].path}/oof.csv has labels the members do not know: {unknown[:3]}")
    y = np.array([index[v] for v in frames[0]["label"]])
    probs = []
    for m, frame in zip(members, frames):
        try:
            values = frame[classes].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
        except KeyError as exc:
            raise ArtkitError(f"{m.path}/oof.csv lacks class columns ({exc})", "retrain the k-fold run") from None
        bad = int((~np.isfinite(values)).any(axis=1).sum())
        if bad:
            raise ArtkitError(
                f"{m.path}/oof.csv has {bad} row(s) of non-numeric, NaN or inf probabilities",
                "the file was edited or damaged; re-create it with artkit train --resume on the k-fold run",
            )
        probs.append(values)
    return y, probs


def oof_macro_f1(y: np.ndarray, probs: list[np.ndarray], weights: np.ndarray, mode: str) -> float:
    """Macro-F1 of the weighted combination of out-of-fold probabilities (log-probabilities stand in for
    logits: they differ per row by a constant, which no averaging mode's argmax sees)."""
    return summary_metrics(y, combine([np.log(np.clip(p, 1e-12, None)) for p in probs], weights, mode).argmax(1))[
        "macro_f1"
    ]


def fit_weights(members: list[Member], classes: list[str], mode: str, seed: int = 0) -> tuple[np.ndarray, dict]:
    """Weights maximising out-of-fold macro-F1, kept only if they also win on rows they were not fit on.

    Guard: the OOF rows are split in two halves (stratified by label); weights fit on each half
    are scored on the other. If those held-out scores do not beat equal weights on average, the
    ensemble keeps equal weights.
    """
    if any(m.oof is None for m in members):
        raise ArtkitError(
            "--fit-weights needs every member to be a k-fold run folder with oof.csv",
            "train members with `artkit train --folds K` and pass their run folders",
        )
    y, probs = oof_arrays(members, classes)
    equal = np.full(len(members), 1 / len(members))

    rng = np.random.default_rng(seed)
    half = np.zeros(len(y), dtype=bool)
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        half[idx[: len(idx) // 2]] = True

    def score(w, rows):
        return oof_macro_f1(y[rows], [p[rows] for p in probs], w, mode)

    held_fit, held_equal = [], []
    for fit_rows, test_rows in ((half, ~half), (~half, half)):
        w = _search_weights([p[fit_rows] for p in probs], y[fit_rows], mode)
        held_fit.append(score(w, test_rows))
        held_equal.append(score(equal, test_rows))
    fitted = _search_weights(probs, y, mode)
    everything = np.ones(len(y), dtype=bool)
    use_fitted = float(np.mean(held_fit)) > float(np.mean(held_equal))
    report = {
        "fitted_weights": fitted.round(3).tolist(),
        "oof_macro_f1_fitted": score(fitted, everything),
        "oof_macro_f1_equal": score(equal, everything),
        "heldout_macro_f1_fitted": float(np.mean(held_fit)),
        "heldout_macro_f1_equal": float(np.mean(held_equal)),
        "used": "fitted" if use_fitted else "equal",
    }
    return (fitted if use_fitted else equal), report


# --------------------------------------------------------------------------- entry point


def check_members(cfg: EnsembleConfig) -> None:
    if not cfg.members:
        raise ArtkitError("no members given", "pass checkpoints (.pt), logits files (.npz) or k-fold run folders")
    if cfg.weights is not None and len(cfg.weights) != len(cfg.members):
        raise ArtkitError(f"--weights has {len(cfg.weights)} values for {len(cfg.members)} members")
    if cfg.weights is not None and sum(cfg.weights) <= 0:
        raise ArtkitError("--weights must not all be zero")
    if cfg.weights is not None and cfg.fit_weights:
        raise ArtkitError("give either --weights or --fit-weights, not both")
    for m in cfg.members:
        if not Path(m).exists():
            raise ArtkitError(f"member not found: {m}")
    default_npz = [str(Path(m).with_suffix(".npz")) for m in cfg.members]
    refuse_overwriting_inputs(
        [cfg.out, logits_path_for(cfg.out, cfg.logits)],
        [*cfg.members, *default_npz, cfg.csv, Path(cfg.data) / "test.csv"],
    )


def member_rows(
    members: list[Member], weights: np.ndarray, pred: np.ndarray, y: np.ndarray | None, classes: list[str]
) -> list[dict]:
    """Per member: weight, agreement with the ensemble, and macro-F1 (on labelled rows, else out-of-fold)."""
    index = {c: i for i, c in enumerate(classes)}
    rows = []
    for m, w in zip(members, weights):
        row = {
            "path": m.path,
            "kind": m.kind,
            "weight": float(w),
            "agreement": float((m.logits.argmax(1) == pred).mean()) if len(pred) else float("nan"),
        }
        if y is not None:
            row["macro_f1"] = summary_metrics(y, m.logits.argmax(1))["macro_f1"]
        elif m.oof is not None:
            oof_y = np.array([index[v] for v in m.oof["label"]])
            row["oof_macro_f1"] = summary_metrics(oof_y, m.oof[classes].to_numpy(dtype=np.float64).argmax(1))[
                "macro_f1"
            ]
        rows.append(row)
    return rows


def _ensemble_oof_f1(members: list[Member], classes: list[str], weights: np.ndarray, mode: str) -> float | None:
    if not all(m.oof is not None for m in members):
        return None
    try:
        return oof_macro_f1(*oof_arrays(members, classes), weights, mode)
    except ArtkitError:
        return None  # runs over different rows have no common OOF score; the ensemble itself is fine


def recorded_data(members: list[str]) -> str | None:
    """The data folder the members were trained on (a checkpoint's config, a k-fold run's config.yaml), when
    they name one and it still exists; None otherwise (logits files name none)."""
    named = set()
    for m in members:
        p = Path(m)
        if p.is_dir() and (p / "config.yaml").is_file():
            named.add((load_yaml(p / "config.yaml") or {}).get("data"))
        elif p.suffix == ".pt" and p.is_file():
            named.add((load_checkpoint(p).get("config") or {}).get("data"))
    named.discard(None)
    folder = named.pop() if len(named) == 1 else None
    return folder if isinstance(folder, str) and Path(folder).is_dir() else None


def with_data_folder(cfg: EnsembleConfig, reporter: Reporter | None) -> EnsembleConfig:
    """``cfg`` with ``--data`` set: as given, else the members' own data folder (said in one line)."""
    if cfg.data is not None or cfg.csv:
        return cfg if cfg.data is not None else replace(cfg, data="data")
    folder = recorded_data(cfg.members)
    if folder is None:
        raise ArtkitError(
            "which test set? the members do not name a data folder that still exists",
            "pass the dataset folder with --data DIR (test.csv or test/), or a test CSV with --csv FILE",
        )
    if reporter:
        reporter.message(f"test set: {folder} (the data folder the members were trained on; --data to choose)")
    return replace(cfg, data=folder)


def run_ensemble(cfg: EnsembleConfig, reporter: Reporter | None = None) -> EnsembleResult:
    cfg = with_data_folder(cfg, reporter)
    check_members(cfg)
    test, source, label_col = _test_rows(cfg)
    checkpoints = checkpoints_of(cfg.members)
    if reporter and checkpoints:
        reporter.message(f"{len(checkpoints)} checkpoint(s) over {len(test)} test images: one pass per input size")
    computed = run_checkpoints(checkpoints, test["path"].tolist(), cfg, reporter)
    members: list[Member] = []
    for path in cfg.members:
        members.append(load_member(path, test, members[0].classes if members else None, computed))
    classes = members[0].classes
    fit_report = None
    if cfg.fit_weights:
        weights, fit_report = fit_weights(members, classes, cfg.mode)
    else:
        weights = np.asarray(cfg.weights if cfg.weights is not None else [1.0] * len(members), dtype=np.float64)
    weights = weights / weights.sum()
    ens = combine([m.logits for m in members], weights, cfg.mode)
    pred = ens.argmax(1)
    y = label_targets(test, classes) if label_col is not None else None
    ids = test["id"].tolist()
    id_col, label_name = submission_columns(source, None, ids) if y is None else ("id", label_col)
    logits_path = logits_path_for(cfg.out, cfg.logits)
    save_logits(logits_path, ids, classes, ens)
    labels = [classes[i] for i in pred]
    write_submission(Path(cfg.out), ids, labels, id_col, label_name)
    return EnsembleResult(
        submission=Path(cfg.out),
        logits=logits_path,
        rows=len(ids),
        weights=weights.round(4).tolist(),
        members=member_rows(members, weights, pred, y, classes),
        ensemble_macro_f1=summary_metrics(y, pred)["macro_f1"] if y is not None else None,
        label_source=cfg.csv if y is not None else None,
        fit_report=fit_report,
        ensemble_oof_macro_f1=None if y is not None else _ensemble_oof_f1(members, classes, weights, cfg.mode),
        warning=submission_warning(labels, len(classes)),
    )


def _test_rows(cfg: EnsembleConfig) -> tuple[pd.DataFrame, object, str | None]:
    """Test rows in order, the dataset they came from, and the label column when ``--csv`` is labelled
    (then members and the ensemble are scored on it)."""
    if cfg.csv and (labelled := labelled_csv(cfg.csv, cfg.columns)) is not None:
        table, label_col = labelled
        return table, None, label_col
    table, source = load_test_table(cfg.data, cfg.csv, cfg.columns)
    return table, source, None
