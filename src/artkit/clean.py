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

import json
import os
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from artkit.errors import ArtkitError
from artkit.scan import Progress, find_duplicates, load_inputs, scan_images

ISSUES = ("unreadable", "empty-label", "duplicate-id", "exact-duplicate", "conflicting-labels", "near-duplicate",
          "train-test-leak", "label-issue", "grayscale", "tiny")
DEFAULT_DROP = ("unreadable", "empty-label", "duplicate-id", "exact-duplicate", "conflicting-labels")
_KEEP_TEXT = {
    "unreadable": "keep (training will fail on it; drop with --drop unreadable)",
    "empty-label": "keep (training refuses empty labels; fill it with --fix)",
    "duplicate-id": "keep",
    "exact-duplicate": "keep",
    "conflicting-labels": "keep (review; relabel with --fix)",
    "near-duplicate": "keep (review)",
    "train-test-leak": "keep (its label is also the answer for the test copy)",
    "grayscale": "keep; converted to RGB at load",
    "tiny": "keep; upscaled at load",
}
SHEET_PER_ISSUE = 10
# bookkeeping columns an OOF file may carry besides id, label and the class probabilities
OOF_EXTRA_COLUMNS = ("fold", "pred", "predicted", "prediction", "img_path", "path")


@dataclass
class CleanConfig:
    data: str | Path = "data"
    out: str | Path = "clean"
    train_csv: str | Path | None = None
    test_csv: str | Path | None = None
    id_col: str | None = None
    image_col: str | None = None
    label_col: str | None = None
    workers: int | None = None  # None: one per CPU
    drop: tuple[str, ...] | list[str] = DEFAULT_DROP
    fix: str | Path | None = None  # CSV id,label: relabels applied to train_clean.csv
    oof: str | Path | None = None  # CSV id,label,<class>...: out-of-fold probabilities for label-issue
    near_threshold: int = 8  # pHash Hamming distance (of 64 bits) for near-duplicate and leaks
    min_size: int = 32  # an image whose smaller side is below this is "tiny"
    use_cache: bool = True


@dataclass
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
        raise ArtkitError(f"unknown issue name(s) in --drop: {', '.join(unknown)}",
                          f"choose from {', '.join(ISSUES)} (or 'none' / 'all')")
    return [i for i in ISSUES if i in values]


# ---------------------------------------------------------------- inputs: --fix and --oof

def read_fixes(path: str | Path, train: pd.DataFrame) -> dict[str, str]:
    """``id,label`` rows -> {id: new label}; every id must be a training id."""
    from artkit.data.layout import read_csv_text

    path = Path(path)
    if not path.is_file():
        raise ArtkitError(f"--fix file not found: {path}", "give a CSV with columns id,label")
    fixes = read_csv_text(path)
    missing = [c for c in ("id", "label") if c not in fixes.columns]
    if missing:
        raise ArtkitError(f"{path} has no column {' or '.join(missing)} (columns: {', '.join(fixes.columns)})",
                          "a --fix file has the header id,label")
    empty = fixes.index[fixes["label"].str.strip() == ""]
    if len(empty):
        raise ArtkitError(f"{path} gives an empty label for id(s) {', '.join(fixes['id'].iloc[empty[:5]])}",
                          "give the new label, or drop the row with --drop instead")
    clash = fixes.groupby("id")["label"].nunique()
    clash = clash[clash > 1]
    if len(clash):
        raise ArtkitError(f"{path} gives different labels for id(s) {', '.join(clash.index[:5])}",
                          "keep one row per id")
    unknown = sorted(set(fixes["id"]) - set(train["id"]))
    if unknown:
        raise ArtkitError(f"{len(unknown)} id(s) in {path} are not in the training data: {', '.join(unknown[:5])}",
                          "check the ids against the training CSV's id column")
    return dict(zip(fixes["id"], fixes["label"]))


@dataclass
class Oof:
    ids: list[str]
    labels: np.ndarray  # class index per row
    probs: np.ndarray  # rows x classes
    classes: list[str]
    notes: list[str]


def read_oof(path: str | Path, train: pd.DataFrame) -> Oof:
    """Validate and read out-of-fold predictions: ``id,label,<one probability column per class>``."""
    from artkit.data.layout import read_csv_text

    path = Path(path)
    hint = "give the out-of-fold predictions of k-fold training: columns id,label, then one probability column per class"
    if not path.is_file():
        raise ArtkitError(f"--oof file not found: {path}", hint)
    oof = read_csv_text(path)
    missing = [c for c in ("id", "label") if c not in oof.columns]
    if missing:
        raise ArtkitError(f"{path} has no column {' or '.join(missing)} (columns: {', '.join(oof.columns)})", hint)
    classes = [c for c in oof.columns if c not in ("id", "label") and c not in OOF_EXTRA_COLUMNS]
    if len(classes) < 2:
        raise ArtkitError(f"{path} has {len(classes)} probability column(s); need one per class (at least 2)", hint)
    if len(oof) == 0:
        raise ArtkitError(f"{path} has no rows", hint)
    unknown_labels = sorted(set(oof["label"]) - set(classes))
    if unknown_labels:
        raise ArtkitError(f"{path}: label(s) {', '.join(map(repr, unknown_labels[:5]))} have no probability column",
                          "the probability columns must be named by the class names")
    probs = np.empty((len(oof), len(classes)))
    for k, c in enumerate(classes):
        col = pd.to_numeric(oof[c], errors="coerce")
        bad = col.isna()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ArtkitError(f"{path}: column '{c}' has a non-number {oof[c].iloc[i]!r} (id {oof['id'].iloc[i]})", hint)
        probs[:, k] = col.to_numpy()
    if (probs < -1e-6).any() or (probs > 1 + 1e-6).any():
        raise ArtkitError(f"{path}: probabilities must be between 0 and 1", "write softmax probabilities, not logits")
    sums = probs.sum(axis=1)
    if np.abs(sums - 1).max() > 0.02:
        i = int(np.argmax(np.abs(sums - 1)))
        raise ArtkitError(f"{path}: the probabilities of id {oof['id'].iloc[i]} sum to {sums[i]:.3f}, not 1",
                          "write softmax probabilities with one column per class (is a class column missing?)")
    probs = np.clip(probs, 0, None) / np.maximum(sums[:, None], 1e-12)
    dup = oof["id"][oof["id"].duplicated()]
    if len(dup):
        raise ArtkitError(f"{path} has {len(dup)} duplicate id(s): {', '.join(dup.iloc[:5])}", "keep one row per id")
    train_ids = set(train["id"])
    unknown = [i for i in oof["id"] if i not in train_ids]
    if unknown:
        raise ArtkitError(f"{len(unknown)} id(s) of {path} are not in the training data: {', '.join(unknown[:5])}",
                          "was it written for this dataset? pass the matching --train-csv")
    notes = []
    not_covered = len(train_ids - set(oof["id"]))
    if not_covered:
        notes.append(f"{not_covered} training id(s) have no out-of-fold prediction; label-issue skips them")
    index = {c: k for k, c in enumerate(classes)}
    return Oof(oof["id"].tolist(), np.array([index[v] for v in oof["label"]]), probs, classes, notes)


def find_label_issues(oof: Oof) -> pd.DataFrame:
    """Confident learning: the rows whose given label the out-of-fold model doubts, worst first.

    Columns: row (position in the OOF file), quality (cleanlab's self-confidence label quality),
    given, suggested, suggested_prob, given_prob."""
    from cleanlab.filter import find_label_issues as cl_find
    from cleanlab.rank import get_label_quality_scores

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cleanlab warns about classes without examples; not an error here
        try:
            ranked = cl_find(oof.labels, oof.probs, filter_by="prune_by_noise_rate",
                             return_indices_ranked_by="self_confidence", n_jobs=1)
            quality = get_label_quality_scores(oof.labels, oof.probs, method="self_confidence")
        except (ValueError, AssertionError) as exc:
            raise ArtkitError(f"cleanlab could not analyse the out-of-fold predictions: {exc}",
                              "check that the OOF file covers the classes of the training set") from None
    ranked = np.asarray(ranked, dtype=int)
    pred = oof.probs.argmax(axis=1)
    return pd.DataFrame({"row": ranked, "quality": quality[ranked],
                         "given": [oof.classes[oof.labels[i]] for i in ranked],
                         "suggested": [oof.classes[pred[i]] for i in ranked],
                         "suggested_prob": oof.probs[ranked, pred[ranked]],
                         "given_prob": oof.probs[ranked, oof.labels[ranked]]})


# ---------------------------------------------------------------- the run

@dataclass
class _Finding:
    set: str  # "train" or "test"
    row: int
    issue: str
    detail: str
    drops: bool = False
    keep_text: str | None = None


def _check(config: CleanConfig) -> list[str]:
    from artkit.eda import check_range

    check_range(config.near_threshold, "--near-threshold", 0, 64)
    check_range(config.min_size, "--min-size")
    return parse_drop(list(config.drop))


def _list(items: list[str], limit: int = 5) -> str:
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def run_clean(config: CleanConfig, progress: Progress | None = None) -> CleanReport:
    """Find the issues, decide what the drop policy removes, and write the outputs."""
    drop = _check(config)
    inputs = load_inputs(config.data, config.train_csv, config.test_csv, config.id_col, config.image_col,
                         config.label_col)
    out = Path(config.out)
    clean_csv = out / "train_clean.csv"
    if inputs.train_csv is not None and clean_csv.resolve() == inputs.train_csv.resolve():
        raise ArtkitError(f"{clean_csv} is the input CSV; clean never overwrites it", "pass another --out folder")
    train, test = inputs.train, inputs.test
    ids = train["id"].astype(str).to_numpy()
    given = train["label"].astype(str).to_numpy()
    fixes = read_fixes(config.fix, train) if config.fix else {}
    labels = np.array([fixes.get(i, g) for i, g in zip(ids, given)], dtype=object)
    relabelled = labels != given
    oof = read_oof(config.oof, train) if config.oof else None  # validate before the long scan
    notes = list(oof.notes) if oof else []

    n = len(train)
    paths = train["path"].tolist() + (test["path"].tolist() if test is not None else [])
    scan = scan_images(paths, config.workers, config.use_cache, progress=progress)
    tr = scan.table.iloc[:n].reset_index(drop=True)
    te = scan.table.iloc[n:].reset_index(drop=True) if test is not None else None
    dups = find_duplicates(tr, te, config.near_threshold, config.workers, config.use_cache)

    def who(i: int) -> str:
        return f"{ids[i]} ({labels[i]})" if labels[i].strip() else f"{ids[i]} (no label)"

    findings: list[_Finding] = []
    sheet_rows: dict[str, list[tuple[str, int]]] = defaultdict(list)  # issue -> [(set, row)] in display order
    readable = tr["readable"].astype(bool).to_numpy()

    # unreadable: missing, zero-byte, not an image, truncated
    for i in np.flatnonzero(~readable):
        findings.append(_Finding("train", i, "unreadable", f"{tr.at[i, 'error_kind']}: {tr.at[i, 'error']}",
                                 "unreadable" in drop))
        sheet_rows["unreadable"].append(("train", i))
    if te is not None:
        for t in np.flatnonzero(~te["readable"].astype(bool).to_numpy()):
            findings.append(_Finding("test", t, "unreadable", f"test image; {te.at[t, 'error_kind']}: {te.at[t, 'error']}"))
            sheet_rows["unreadable"].append(("test", t))

    for i in np.flatnonzero([not v.strip() for v in labels]):
        findings.append(_Finding("train", i, "empty-label", "the label cell is empty", "empty-label" in drop))
        sheet_rows["empty-label"].append(("train", i))

    # duplicate ids: conflicting labels make every row of the id doubtful
    by_id: dict[str, list[int]] = defaultdict(list)
    for i, v in enumerate(ids):
        by_id[v].append(i)
    line = 2 if inputs.layout == "csv" else None  # data rows start on CSV line 2
    for v, rows in by_id.items():
        if len(rows) < 2:
            continue
        conflict = len({labels[i] for i in rows}) > 1
        where = ", ".join(str(i + line) for i in rows) if line else ""
        for k, i in enumerate(rows):
            detail = (f"id appears {len(rows)} times" + (f" (CSV lines {where})" if where else "")
                      + (f" with different labels: {_list(sorted({str(labels[j]) for j in rows}))}" if conflict
                         else " with the same label"))
            drops = "duplicate-id" in drop and (conflict or k > 0)
            findings.append(_Finding("train", i, "duplicate-id", detail, drops,
                                     None if conflict or k else "keep (first row of the id)"))
            sheet_rows["duplicate-id"].append(("train", i))

    # exact duplicates: keep the first copy of each group
    conflicts: dict[int, list[str]] = defaultdict(list)
    for group in dups.exact_groups:
        for k, i in enumerate(group):
            others = [who(j) for j in group if j != i]
            findings.append(_Finding("train", i, "exact-duplicate", f"same pixels as {_list(others)}",
                                     "exact-duplicate" in drop and k > 0, "keep (first copy)" if k == 0 else None))
            sheet_rows["exact-duplicate"].append(("train", i))
            conflicts[i] += [f"identical to {who(j)}" for j in group if j != i and labels[j] != labels[i]
                             and labels[j].strip() and labels[i].strip()]

    # near duplicates: keep the first image of each connected cluster
    near: dict[int, list[tuple[int, int]]] = defaultdict(list)
    parent = list(range(n))

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i, j, d in dups.near_pairs:
        near[i].append((j, d))
        near[j].append((i, d))
        parent[max(root(i), root(j))] = min(root(i), root(j))
        for a, b in ((i, j), (j, i)):
            if labels[a] != labels[b] and labels[a].strip() and labels[b].strip():
                conflicts[a].append(f"near-duplicate of {who(b)} (distance {d})")
        for x in (i, j):
            if ("train", x) not in sheet_rows["near-duplicate"]:
                sheet_rows["near-duplicate"].append(("train", x))
    for i in sorted(near):
        first = root(i) == i
        partners = [f"{who(j)} at distance {d}" for j, d in sorted(near[i], key=lambda p: p[1])]
        findings.append(_Finding("train", i, "near-duplicate", f"looks like {_list(partners)}",
                                 "near-duplicate" in drop and not first, "keep (first of its cluster)" if first else None))

    for i in sorted(conflicts):
        if conflicts[i]:
            findings.append(_Finding("train", i, "conflicting-labels",
                                     f"labelled '{labels[i]}' but {_list(conflicts[i])}", "conflicting-labels" in drop))
    conflict_rows = sorted(i for i in conflicts if conflicts[i])
    order = [r for g in dups.exact_groups for r in g] + [r for p in dups.near_pairs for r in p[:2]]
    sheet_rows["conflicting-labels"] = [("train", r) for r in dict.fromkeys(order) if r in set(conflict_rows)]

    # train images that are also in the test set
    if te is not None and test is not None:
        leaked: dict[int, list[str]] = defaultdict(list)
        for i, t, d, exact in dups.leaks:
            how = "identical" if exact else f"distance {d}"
            leaked[i].append(f"{test.at[t, 'id']} ({how})")
            findings.append(_Finding("test", t, "train-test-leak",
                                     f"test image; a copy of training image {who(i)} ({how})"))
            sheet_rows["train-test-leak"] += [("train", i), ("test", t)]
        for i, copies in sorted(leaked.items()):
            findings.append(_Finding("train", i, "train-test-leak", f"also in the test set as {_list(copies)}",
                                     "train-test-leak" in drop))

    # colour and size
    gray = readable & tr["is_grayscale"].astype(bool).to_numpy()
    for i in np.flatnonzero(gray):
        how = f"stored as mode {tr.at[i, 'mode']}" if tr.at[i, "stored_gray"] else "RGB with equal channels"
        findings.append(_Finding("train", i, "grayscale", how, "grayscale" in drop))
        sheet_rows["grayscale"].append(("train", i))
    small = readable & (np.minimum(tr["width"].to_numpy(), tr["height"].to_numpy()) < config.min_size)
    for i in np.flatnonzero(small):
        findings.append(_Finding("train", i, "tiny", f"{tr.at[i, 'width']}x{tr.at[i, 'height']} px, "
                                 f"smaller side below --min-size {config.min_size}", "tiny" in drop))
        sheet_rows["tiny"].append(("train", i))

    # likely label errors, from out-of-fold predictions
    label_table = None
    if oof is not None:
        first_row = {v: rows[0] for v, rows in by_id.items()}
        label_table = find_label_issues(oof)
        label_table.insert(0, "rank", np.arange(1, len(label_table) + 1))
        label_table.insert(1, "id", [oof.ids[r] for r in label_table["row"]])
        label_table.insert(2, "file", [train.at[first_row[v], "path"] for v in label_table["id"]])
        for rank, r in enumerate(label_table.itertuples(index=False), start=1):
            i = first_row[r.id]
            detail = (f"labelled '{r.given}' (p={r.given_prob:.2f}), model predicts '{r.suggested}' "
                      f"(p={r.suggested_prob:.2f}); label quality {r.quality:.3f}, rank {rank} of {len(label_table)}")
            fixed = relabelled[i]
            findings.append(_Finding("train", i, "label-issue", detail, "label-issue" in drop and not fixed,
                                     f"relabelled to '{labels[i]}' by --fix" if fixed
                                     else f"review; relabel with --fix (suggested: {r.suggested})"))
            sheet_rows["label-issue"].append(("train", i))
        label_table = label_table.drop(columns=["row"])

    # the policy: each dropped row is charged to the first issue (in ISSUES order) that drops it
    reason: dict[int, str] = {}
    for f in sorted((f for f in findings if f.set == "train" and f.drops), key=lambda f: ISSUES.index(f.issue)):
        reason.setdefault(f.row, f.issue)
    records = []
    for f in sorted(findings, key=lambda f: (ISSUES.index(f.issue), f.set != "train", f.row)):
        table, frame = (train, tr) if f.set == "train" else (test, te)
        if f.set == "test":
            action = "report only (test image)"
        elif f.row in reason:
            action = "drop" if reason[f.row] == f.issue else f"drop (by {reason[f.row]})"
        else:
            action = f.keep_text or _KEEP_TEXT.get(f.issue, "keep")
        records.append({"id": str(table.at[f.row, "id"]), "file": str(frame.at[f.row, "path"]), "issue": f.issue,
                        "detail": f.detail, "action": action})
    issues = pd.DataFrame(records, columns=["id", "file", "issue", "detail", "action"])

    out.mkdir(parents=True, exist_ok=True)
    issues_csv = out / "issues.csv"
    issues.to_csv(issues_csv, index=False, encoding="utf-8")
    keep = np.array([i not in reason for i in range(n)], dtype=bool)
    cleaned = _cleaned_table(inputs, keep, relabelled, labels, out)
    cleaned.to_csv(clean_csv, index=False, encoding="utf-8")
    if inputs.layout == "csv" and out.resolve() != inputs.train_csv.resolve().parent:
        notes.append(f"image paths in train_clean.csv are relative to {out} (the folder of the cleaned CSV)")

    label_csv = None
    if label_table is not None:
        label_csv = out / "label_issues.csv"
        label_table.to_csv(label_csv, index=False, encoding="utf-8", float_format="%.4f")

    sheet = _flagged_sheet(sheet_rows, train, tr, test, te, labels, out / "flagged.png", config.workers)
    counts = {k: int(v) for k, v in issues["issue"].value_counts().items()}
    dropped = {k: sum(1 for r in reason.values() if r == k) for k in ISSUES if k in reason.values()}
    scan_info = {"files": len(set(paths)), "cache_hits": scan.cache_hits, "decoded": scan.decoded,
                 "pixel_decodes": dups.pixel_decodes, "seconds": round(scan.seconds, 3)}
    clean_json = out / "clean.json"
    summary = {"data": str(inputs.root.resolve()), "train_csv": str(inputs.train_csv) if inputs.train_csv else None,
               "rows_in": n, "rows_out": int(keep.sum()), "drop": drop, "near_threshold": config.near_threshold,
               "min_size": config.min_size, "issues": {k: counts.get(k, 0) for k in ISSUES}, "dropped": dropped,
               "relabelled": int(relabelled.sum()), "notes": notes, "scan": scan_info,
               "outputs": {"issues": issues_csv.name, "train_clean": clean_csv.name,
                           "contact_sheet": sheet.name if sheet else None,
                           "label_issues": label_csv.name if label_csv else None}}
    clean_json.write_text(json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8")
    return CleanReport(out, issues_csv, clean_csv, clean_json, sheet, label_csv, n, int(keep.sum()), counts, dropped,
                       int(relabelled.sum()), drop, issues, notes, scan_info)


def _rel(path: str, out: Path) -> str:
    if not path:
        return ""
    try:
        return Path(os.path.relpath(path, out.resolve())).as_posix()
    except ValueError:  # another drive on Windows: absolute paths work too
        return path


def _cleaned_table(inputs, keep: np.ndarray, relabelled: np.ndarray, labels: np.ndarray, out: Path) -> pd.DataFrame:
    """The kept rows: the original CSV's text (fixes applied, image paths made to work from ``out``),
    or a Dacon-style id,img_path,label table for the folder layout."""
    train = inputs.train
    if inputs.layout == "csv":
        raw = inputs.raw_train.copy()
        if relabelled.any():
            raw.loc[relabelled, inputs.label_col] = labels[relabelled]
        if out.resolve() != inputs.train_csv.resolve().parent:
            raw[inputs.image_col] = [_rel(p, out) for p in train["path"]]
        return raw.loc[keep].reset_index(drop=True)
    table = pd.DataFrame({"id": train["id"], "img_path": [_rel(p, out) for p in train["path"]],
                          "label": labels.astype(str)})
    return table.loc[keep].reset_index(drop=True)


def _flagged_sheet(sheet_rows, train, tr, test, te, labels, path: Path, workers: int | None) -> Path | None:
    from artkit.eda import contact_sheet

    rows = []
    for issue in ISSUES:
        items = sheet_rows.get(issue)
        if not items:
            continue
        tiles = []
        for which, i in items[:SHEET_PER_ISSUE]:
            if which == "train":
                tiles.append((tr.at[i, "path"], f"{train.at[i, 'id']} · {labels[i] or '(no label)'}"))
            else:
                tiles.append((te.at[i, "path"], f"{test.at[i, 'id']} · test"))
        count = len(dict.fromkeys(items))
        rows.append((f"{issue} ({count})", tiles))
    if not rows:
        if path.exists():
            path.unlink()  # an old sheet from a previous run would be misleading
        return None
    return contact_sheet(rows, path, thumb=112, workers=workers or 4, title="flagged images (id · label)")
