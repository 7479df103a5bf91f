"""``artkit clean``: find what is wrong with a training set and write a cleaned copy of its CSV.

Never touches the user's images or CSVs. Writes into ``config.out``:

* ``issues.csv``: id, file, issue, detail, action; one row per affected file and issue (both
  members of a duplicate pair appear), issue names as in :data:`ISSUES`;
* ``train_clean.csv``: the original CSV's rows, same columns and text, minus the rows the
  ``drop`` policy removes, with ``--fix`` relabels applied. Image paths are rewritten relative to
  the output folder (when it differs from the CSV's folder) so the file can be used as it is;
* ``flagged.png``: a contact sheet of flagged images with their labels;
* ``label_issues.csv`` (with ``--oof``): likely mislabelled rows, worst first, with the model's
  suggested label; ``clean.json``: the counts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from artkit.data.labels import similar_labels
from artkit.data.layout import DataSource, discover, paths_outside
from artkit.errors import ArtkitError
from artkit.options import check_config
from artkit.qa.config import CleanConfig
from artkit.qa.duplicates import find_duplicates
from artkit.qa.finders import Finding, Scanned
from artkit.qa.issues import ISSUES, finders
from artkit.qa.label_issues import read_oof
from artkit.qa.scan import Progress, scan_images
from artkit.reader import read_csv_text
from artkit.render.sheet import contact_sheet
from artkit.writer import ensure_dir, write_csv, write_json

SHEET_PER_ISSUE = 10


@dataclass(kw_only=True)
class CleanReport:
    out: Path
    issues_csv: Path
    train_clean_csv: Path
    clean_json: Path
    contact_sheet: Path | None
    label_issues_csv: Path | None
    rows_in: int
    rows_out: int
    counts: dict[str, int]  # issue -> rows in issues.csv
    dropped: dict[str, int]  # issue -> training rows it dropped (each row counted once)
    relabelled: int
    drop: list[str]
    issues: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    scan: dict = field(default_factory=dict)


def parse_drop(values) -> list[str]:
    """Validate a drop policy; 'none' means keep everything, 'all' drops every issue."""
    values = [v.strip() for v in values if v and v.strip()]
    if values in (["none"], []):
        return []
    if values == ["all"]:
        return list(ISSUES)
    unknown = [v for v in values if v not in ISSUES]
    if unknown:
        raise ArtkitError(
            f"unknown issue name(s) in --drop: {', '.join(unknown)}",
            f"choose from {', '.join(ISSUES)} (or 'none' / 'all')",
        )
    return [i for i in ISSUES if i in values]


# ---------------------------------------------------------------- input: --fix


def read_fixes(path: str | Path, train: pd.DataFrame, allow_new_class: bool = False) -> dict[str, str]:
    """``id,label`` rows -> {id: new label}; every id must be a training id, and every label one the data has
    (unless ``allow_new_class``: a one-image class made by a typo would train silently)."""
    path = Path(path)
    if not path.is_file():
        raise ArtkitError(f"--fix file not found: {path}", "give a CSV with columns id,label")
    fixes = read_csv_text(path)
    missing = [c for c in ("id", "label") if c not in fixes.columns]
    if missing:
        raise ArtkitError(
            f"{path} has no column {' or '.join(missing)} (columns: {', '.join(fixes.columns)})",
            "a --fix file has the header id,label",
        )
    empty = fixes.index[fixes["label"].str.strip() == ""]
    if len(empty):
        raise ArtkitError(
            f"{path} gives an empty label for id(s) {', '.join(fixes['id'].iloc[empty[:5]])}",
            "give the new label, or drop the row with --drop instead",
        )
    clash = fixes.groupby("id")["label"].nunique()
    clash = clash[clash > 1]
    if len(clash):
        raise ArtkitError(
            f"{path} gives different labels for id(s) {', '.join(clash.index[:5])}", "keep one row per id"
        )
    unknown = sorted(set(fixes["id"]) - set(train["id"]))
    if unknown:
        raise ArtkitError(
            f"{len(unknown)} id(s) in {path} are not in the training data: {', '.join(unknown[:5])}",
            "check the ids against the training CSV's id column",
        )
    new = sorted(set(fixes["label"]) - set(train["label"]))
    if new and not allow_new_class:
        import difflib

        close = difflib.get_close_matches(new[0], sorted(set(train["label"])), n=1, cutoff=0.6)
        raise ArtkitError(
            f"{path} relabels to {len(new)} label(s) the data does not have: {', '.join(map(repr, new[:5]))}"
            + (f" (did you mean {close[0]!r}?)" if close else ""),
            "fix the spelling, or pass --allow-new-class to create the class",
        )
    return dict(zip(fixes["id"], fixes["label"]))


# ---------------------------------------------------------------- the policy and the outputs


def drop_reasons(findings: list[Finding], drop: list[str]) -> dict[int, str]:
    """Training row -> the issue that drops it: the first issue (in ISSUES order) whose policy drops it."""
    order = list(ISSUES)
    reason: dict[int, str] = {}
    for f in sorted(
        (f for f in findings if f.set == "train" and f.droppable and f.issue in drop),
        key=lambda f: order.index(f.issue),
    ):
        reason.setdefault(f.row, f.issue)
    return reason


def issue_table(findings: list[Finding], reason: dict[int, str], s: Scanned) -> pd.DataFrame:
    """issues.csv: one row per finding, in ISSUES order, with the action the policy took."""
    order = list(ISSUES)
    records = []
    for f in sorted(findings, key=lambda f: (order.index(f.issue), f.set != "train", f.row)):
        table, frame = (s.train, s.tr) if f.set == "train" else (s.test, s.te)
        if f.set == "test":
            action = "report only (test image)"
        elif f.row in reason:
            action = "drop" if reason[f.row] == f.issue else f"drop (by {reason[f.row]})"
        else:
            action = f.keep_text or ISSUES[f.issue].kept
        records.append(
            {
                "id": str(table.at[f.row, "id"]),
                "file": str(frame.at[f.row, "path"]),
                "issue": f.issue,
                "detail": f.detail,
                "action": action,
            }
        )
    return pd.DataFrame(records, columns=["id", "file", "issue", "detail", "action"])


def _rel(path: str, out: Path) -> str:
    if not path:
        return ""
    try:
        return Path(os.path.relpath(path, out.resolve())).as_posix()
    except ValueError:  # another drive on Windows: absolute paths work too
        return path


def cleaned_table(s: Scanned, keep: np.ndarray, out: Path) -> pd.DataFrame:
    """The kept rows: the original CSV's text (fixes applied, image paths made to work from ``out``),
    or a Dacon-style id,img_path,label table for the folder layout."""
    src = s.source
    if src.layout == "csv":
        raw = src.raw_train.copy()
        if s.relabelled.any():
            raw.loc[s.relabelled, src.train_label_col] = s.labels[s.relabelled]
        if out.resolve() != src.train_csv.resolve().parent:
            raw[src.image_col] = [_rel(p, out) for p in s.train["path"]]
        return raw.loc[keep].reset_index(drop=True)
    table = pd.DataFrame(
        {"id": s.train["id"], "img_path": [_rel(p, out) for p in s.train["path"]], "label": s.labels.astype(str)}
    )
    return table.loc[keep].reset_index(drop=True)


def flagged_sheet(findings: list[Finding], s: Scanned, path: Path, workers: int | None) -> Path | None:
    """A contact sheet with a row of flagged images per issue."""
    rows = []
    for issue in ISSUES:
        items = list(dict.fromkeys((f.set, f.row) for f in findings if f.issue == issue))
        if not items:
            continue
        tiles = []
        for which, i in items[:SHEET_PER_ISSUE]:
            if which == "train":
                tiles.append((s.tr.at[i, "path"], f"{s.train.at[i, 'id']} · {s.labels[i] or '(no label)'}"))
            else:
                tiles.append((s.te.at[i, "path"], f"{s.test.at[i, 'id']} · test"))
        rows.append((f"{issue} ({len(items)})", tiles))
    if not rows:
        path.unlink(missing_ok=True)  # an old sheet from a previous run would be misleading
        return None
    return contact_sheet(rows, path, thumb=112, workers=workers, title="flagged images (id · label)")


# ---------------------------------------------------------------- the run


def load_training(config: CleanConfig) -> tuple[DataSource, pd.DataFrame, np.ndarray, np.ndarray]:
    """The dataset, its training rows, their labels after --fix, and which ones --fix changed."""
    source = discover(config.data, config.train_csv, config.test_csv, config.columns, tolerant=True)
    train = source.require_train().reset_index(drop=True)
    clean_csv = Path(config.out) / "train_clean.csv"
    if source.train_csv is not None and clean_csv.resolve() == source.train_csv.resolve():
        raise ArtkitError(f"{clean_csv} is the input CSV; clean never overwrites it", "pass another --out folder")
    ids = train["id"].astype(str).to_numpy()
    given = train["label"].astype(str).to_numpy()
    fixes = read_fixes(config.fix, train, config.allow_new_class) if config.fix else {}
    labels = np.array([fixes.get(i, g) for i, g in zip(ids, given)], dtype=object)
    return source, train, labels, labels != given


def scan_dataset(
    config: CleanConfig,
    source: DataSource,
    train: pd.DataFrame,
    labels: np.ndarray,
    relabelled: np.ndarray,
    progress: Progress | None,
) -> Scanned:
    """Scan every train and test image and find duplicates."""
    test, n = source.test, len(train)
    paths = train["path"].tolist() + (test["path"].tolist() if test is not None else [])
    scan = scan_images(paths, config.workers, config.cache, progress=progress)
    tr = scan.table.iloc[:n].reset_index(drop=True)
    te = scan.table.iloc[n:].reset_index(drop=True) if test is not None else None
    dups = find_duplicates(tr, te, config.near_threshold, config.workers, config.cache)
    info = {
        "files": len(set(paths)),
        "cache_hits": scan.cache_hits,
        "decoded": scan.decoded,
        "pixel_decodes": dups.pixel_decodes,
        "seconds": round(scan.seconds, 3),
    }
    return Scanned(
        source=source,
        train=train,
        test=test,
        tr=tr,
        te=te,
        dups=dups,
        ids=train["id"].astype(str).to_numpy(),
        labels=labels,
        relabelled=relabelled,
        scan_info=info,
    )


def find_all(s: Scanned, config: CleanConfig) -> list[Finding]:
    """Every issue's finder (:mod:`artkit.qa.issues`) over the scanned dataset."""
    return [finding for find in finders() for finding in find(s, config)]


def data_notes(source: DataSource, labels: np.ndarray) -> list[str]:
    """What clean says about the data besides its per-row issues: label spellings and outside paths."""
    notes = list(source.notes)
    for a, b in similar_labels([v for v in labels if v.strip()]):
        notes.append(f"near-identical class names {a!r} and {b!r}: one class spelled two ways? relabel with --fix")
    csv_dirs = [p.parent for p in (source.train_csv, source.test_csv) if p is not None]
    outside = paths_outside(source.train, source.root, *csv_dirs) + paths_outside(source.test, source.root, *csv_dirs)
    if outside:
        notes.append(f"{len(outside)} image path(s) point outside the data folder, e.g. {outside[0]}")
    return notes


def run_clean(config: CleanConfig, progress: Progress | None = None) -> CleanReport:
    """Find the issues, decide what the drop policy removes, and write the outputs."""
    check_config(config)
    drop = parse_drop(list(config.drop))
    source, train, labels, relabelled = load_training(config)
    oof = read_oof(config.oof, train) if config.oof else None  # validate before the long scan
    s = scan_dataset(config, source, train, labels, relabelled, progress)
    s.oof = oof
    notes = (oof.notes if oof else []) + data_notes(source, labels)
    findings = find_all(s, config)
    reason = drop_reasons(findings, drop)
    issues = issue_table(findings, reason, s)
    keep = np.array([i not in reason for i in range(len(s.train))], dtype=bool)
    return write_outputs(config, s, findings, issues, reason, keep, drop, notes)


def write_outputs(
    config: CleanConfig,
    s: Scanned,
    findings: list[Finding],
    issues: pd.DataFrame,
    reason: dict[int, str],
    keep: np.ndarray,
    drop: list[str],
    notes: list[str],
) -> CleanReport:
    out = ensure_dir(config.out)
    notes = list(notes)
    write_csv(out / "issues.csv", issues)
    write_csv(out / "train_clean.csv", cleaned_table(s, keep, out))
    if s.source.layout == "csv" and out.resolve() != s.source.train_csv.resolve().parent:
        notes.append(f"image paths in train_clean.csv are relative to {out} (the folder of the cleaned CSV)")
    label_csv = None
    if s.label_table is not None:
        label_csv = out / "label_issues.csv"
        write_csv(label_csv, s.label_table, float_format="%.4f")
    sheet = flagged_sheet(findings, s, out / "flagged.png", config.workers)
    report = CleanReport(
        out=out,
        issues_csv=out / "issues.csv",
        train_clean_csv=out / "train_clean.csv",
        clean_json=out / "clean.json",
        contact_sheet=sheet,
        label_issues_csv=label_csv,
        rows_in=len(s.train),
        rows_out=int(keep.sum()),
        counts={k: int(v) for k, v in issues["issue"].value_counts().items()},
        dropped={k: sum(1 for r in reason.values() if r == k) for k in ISSUES if k in reason.values()},
        relabelled=int(s.relabelled.sum()),
        drop=drop,
        issues=issues,
        notes=notes,
        scan=s.scan_info,
    )
    write_json(report.clean_json, _summary(config, s, report))
    return report


def _summary(config: CleanConfig, s: Scanned, r: CleanReport) -> dict:
    """clean.json: the counts and where the outputs are."""
    return {
        "data": str(s.source.root.resolve()),
        "train_csv": str(s.source.train_csv) if s.source.train_csv else None,
        "rows_in": r.rows_in,
        "rows_out": r.rows_out,
        "drop": r.drop,
        "near_threshold": config.near_threshold,
        "min_size": config.min_size,
        "issues": {k: r.counts.get(k, 0) for k in ISSUES},
        "dropped": r.dropped,
        "relabelled": r.relabelled,
        "notes": r.notes,
        "scan": r.scan,
        "outputs": {
            "issues": r.issues_csv.name,
            "train_clean": r.train_clean_csv.name,
            "contact_sheet": r.contact_sheet.name if r.contact_sheet else None,
            "label_issues": r.label_issues_csv.name if r.label_issues_csv else None,
        },
    }
