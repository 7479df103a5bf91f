"""``artkit runs``: every run under a folder in one table, the experiment log a competitor keeps by hand."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from artkit.engine.runs import is_running, read_results, read_summary
from artkit.errors import ArtkitError
from artkit.reader import load_yaml, read_json
from artkit.writer import write_csv

# options that tell runs apart without saying anything about the recipe or the data it trained on
NOT_COMPARED = {"name", "out", "resume", "chosen", "workers", "device", "fold", "logger", "save_every"}
SORT_KEYS = ("name", "score", "time", "status", "model", "started")


@dataclass(kw_only=True)
class RunRow:
    name: str
    model: str
    img_size: str
    epochs: str  # run / planned
    score: float | None  # best val macro-F1, or CV macro-F1 for k-fold runs
    score_kind: str  # "val macro-F1" or "CV macro-F1"
    seconds: float  # training time (the epochs' seconds)
    status: str  # finished, degenerate (finished, but learned nothing), interrupted, failed, damaged
    started: float  # modification time of config.yaml
    options: dict[str, Any]
    differs: str = ""  # the options whose values differ between the listed runs
    note: str = ""  # why a damaged run could not be read


def _status(run: Path, epochs_run: int) -> str:
    summary = read_summary(run)
    if summary and summary.get("finished"):
        return "degenerate" if summary.get("warning") else "finished"
    if is_running(run):
        return "running"
    return "interrupted" if (run / "last.pt").exists() or epochs_run else "failed"


def _single(run: Path, name: str, options: dict[str, Any]) -> RunRow:
    rows = read_results(run / "results.csv")
    summary = read_summary(run) or {}
    planned = int(options.get("epochs") or 0)
    return RunRow(
        name=name,
        model=str(options.get("model")),
        img_size=str(options.get("img_size") or "model's"),
        epochs=f"{len(rows)}/{planned}",
        score=(summary.get("best_metrics") or {}).get("val_macro_f1") or _best_so_far(rows),
        score_kind="val macro-F1",
        seconds=sum(r["seconds"] for r in rows),
        status=_status(run, len(rows)),
        started=(run / "config.yaml").stat().st_mtime,
        options=options,
    )


def _resolved(options: dict[str, Any], folds: list[Path]) -> dict[str, Any]:
    """A k-fold run's options with the values its folds resolved ``auto`` to (the parent keeps ``auto``; a single
    run keeps what it chose), so that the same choice does not show as a difference."""
    if not folds:
        return options
    fold = load_yaml(folds[0] / "config.yaml") or {}
    return {**options, **{k: fold[k] for k in fold.get("chosen") or {} if k in fold}}


def _kfold(run: Path, name: str, options: dict[str, Any]) -> RunRow:
    folds = sorted(p for p in run.glob("fold*") if (p / "config.yaml").is_file())
    options = _resolved(options, folds)
    parts = [_single(f, f.name, options) for f in folds]
    cv = read_json(run / "cv.json") if (run / "cv.json").is_file() else None
    done = sum(p.status in ("finished", "degenerate") for p in parts)
    status = "finished" if cv else ("interrupted" if parts else "failed")
    if cv and any(p.status == "degenerate" for p in parts):
        status = "degenerate"
    return RunRow(
        name=name,
        model=str(options.get("model")),
        img_size=str(options.get("img_size") or "model's"),
        epochs=f"{done}/{options.get('folds')} folds",
        score=cv["cv_macro_f1_mean"] if cv else None,
        score_kind="CV macro-F1",
        seconds=sum(p.seconds for p in parts),
        status=status,
        started=(run / "config.yaml").stat().st_mtime,
        options=options,
    )


def _best_so_far(rows: list[dict[str, Any]]) -> float | None:
    """The best validation macro-F1 of the finished epochs (a running or interrupted run has no summary yet)."""
    import math

    scores = [r["val_macro_f1"] for r in rows if math.isfinite(r.get("val_macro_f1", float("nan")))]
    return max(scores) if scores else None


def find_runs(root: Path) -> list[RunRow]:
    """Every run folder under ``root`` (a k-fold run is one row, its folds inside it)."""
    if not root.is_dir():
        raise ArtkitError(f"runs folder not found: {root}", "pass the folder that holds your runs (default runs/)")
    out = []
    for config in sorted(root.rglob("config.yaml")):
        run = config.parent
        if run.name.startswith("fold") and (run.parent / "config.yaml").is_file():
            continue  # a fold: part of its k-fold run's row
        name = run.relative_to(root).as_posix()
        try:
            options = load_yaml(config)
            kfold = options.get("folds") and options.get("fold") is None
            out.append(_kfold(run, name, options) if kfold else _single(run, name, options))
        except (ArtkitError, ValueError, TypeError, KeyError, AttributeError) as exc:  # one damaged run, not all
            out.append(_damaged(run, name, exc))
    _mark_differences(out)
    return out


def _damaged(run: Path, name: str, exc: Exception) -> RunRow:
    """A run whose files cannot be read (a hand-edited results.csv, a truncated summary.json, ...)."""
    reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
    return RunRow(
        name=name,
        model="-",
        img_size="-",
        epochs="-",
        score=None,
        score_kind="val macro-F1",
        seconds=0.0,
        status="damaged",
        started=run.lstat().st_mtime,
        options={},
        note=reason,
    )


def _mark_differences(rows: list[RunRow]) -> None:
    rows = [r for r in rows if r.status != "damaged"]
    keys = sorted({k for r in rows for k in r.options} - NOT_COMPARED - {"model", "epochs"})
    differing = [k for k in keys if len({repr(r.options.get(k)) for r in rows}) > 1]
    for r in rows:  # an option a run leaves unset (None) is left out of its cell, not shown as "None"
        r.differs = " ".join(f"{k}={r.options[k]}" for k in differing if r.options.get(k) is not None)


def sort_runs(rows: list[RunRow], key: str) -> list[RunRow]:
    if key not in SORT_KEYS:
        raise ArtkitError(f"unknown --sort '{key}'", f"choose one of: {', '.join(SORT_KEYS)}")
    if key == "score":
        return sorted(rows, key=lambda r: (r.score is None, -(r.score or 0)))
    return sorted(rows, key=lambda r: getattr(r, key))


def write_runs_csv(rows: list[RunRow], path: str | Path) -> None:
    import pandas as pd

    write_csv(
        path,
        pd.DataFrame(
            [
                {
                    "name": r.name,
                    "model": r.model,
                    "img_size": r.img_size,
                    "epochs": r.epochs,
                    "score": r.score,
                    "score_kind": r.score_kind,
                    "seconds": round(r.seconds, 1),
                    "status": r.status,
                    "differs": r.differs,
                }
                for r in rows
            ]
        ),
    )
