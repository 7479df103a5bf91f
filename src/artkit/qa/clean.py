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
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from artkit.configs import check_config
from artkit.data.labels import similar_labels
from artkit.data.layout import DataSource, discover, paths_outside
from artkit.errors import ArtkitError
from artkit.qa.config import ISSUES, CleanConfig
from artkit.qa.duplicates import Duplicates, find_duplicates
from artkit.qa.scan import Progress, scan_images
from artkit.reader import read_csv_text
from artkit.report.sheet import contact_sheet
from artkit.writer import ensure_dir, write_csv, write_json

_KEEP_TEXT = {
    "unreadable": "keep (training will fail on it; drop with --drop unreadable)",
    "too-large": "keep (training will fail on it; drop with --drop too-large)",
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


# ---------------------------------------------------------------- inputs: --fix and --oof


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


@dataclass(kw_only=True)
class Oof:
    ids: list[str]
    labels: np.ndarray  # class index per row
    probs: np.ndarray  # rows x classes
    classes: list[str]
    notes: list[str]


OOF_HINT = (
    "give the out-of-fold predictions of k-fold training: columns id,label, then one probability column per class"
)


def _oof_classes(oof: pd.DataFrame, path: Path) -> list[str]:
    missing = [c for c in ("id", "label") if c not in oof.columns]
    if missing:
        raise ArtkitError(f"{path} has no column {' or '.join(missing)} (columns: {', '.join(oof.columns)})", OOF_HINT)
    classes = [c for c in oof.columns if c not in ("id", "label") and c not in OOF_EXTRA_COLUMNS]
    if len(classes) < 2:
        raise ArtkitError(f"{path} has {len(classes)} probability column(s); need one per class (at least 2)", OOF_HINT)
    if len(oof) == 0:
        raise ArtkitError(f"{path} has no rows", OOF_HINT)
    unknown_labels = sorted(set(oof["label"]) - set(classes))
    if unknown_labels:
        raise ArtkitError(
            f"{path}: label(s) {', '.join(map(repr, unknown_labels[:5]))} have no probability column",
            "the probability columns must be named by the class names",
        )
    return classes


def _oof_probabilities(oof: pd.DataFrame, classes: list[str], path: Path) -> np.ndarray:
    probs = np.empty((len(oof), len(classes)))
    for k, c in enumerate(classes):
        col = pd.to_numeric(oof[c], errors="coerce")
        if col.isna().any():
            i = int(np.flatnonzero(col.isna())[0])
            raise ArtkitError(
                f"{path}: column '{c}' has a non-number {oof[c].iloc[i]!r} (id {oof['id'].iloc[i]})", OOF_HINT
            )
        probs[:, k] = col.to_numpy()
    if (probs < -1e-6).any() or (probs > 1 + 1e-6).any():
        raise ArtkitError(f"{path}: probabilities must be between 0 and 1", "write softmax probabilities, not logits")
    sums = probs.sum(axis=1)
    if np.abs(sums - 1).max() > 0.02:
        i = int(np.argmax(np.abs(sums - 1)))
        raise ArtkitError(
            f"{path}: the probabilities of id {oof['id'].iloc[i]} sum to {sums[i]:.3f}, not 1",
            "write softmax probabilities with one column per class (is a class column missing?)",
        )
    return np.clip(probs, 0, None) / np.maximum(sums[:, None], 1e-12)


def _oof_ids(oof: pd.DataFrame, train: pd.DataFrame, path: Path) -> list[str]:
    """Checks the ids against the training data; returns notes."""
    dup = oof["id"][oof["id"].duplicated()]
    if len(dup):
        raise ArtkitError(f"{path} has {len(dup)} duplicate id(s): {', '.join(dup.iloc[:5])}", "keep one row per id")
    train_ids = set(train["id"])
    unknown = [i for i in oof["id"] if i not in train_ids]
    if unknown:
        raise ArtkitError(
            f"{len(unknown)} id(s) of {path} are not in the training data: {', '.join(unknown[:5])}",
            "was it written for this dataset? pass the matching --train-csv",
        )
    not_covered = len(train_ids - set(oof["id"]))
    return (
        [f"{not_covered} training id(s) have no out-of-fold prediction; label-issue skips them"] if not_covered else []
    )


def read_oof(path: str | Path, train: pd.DataFrame) -> Oof:
    """Validate and read out-of-fold predictions: ``id,label,<one probability column per class>``."""
    path = Path(path)
    if not path.is_file():
        raise ArtkitError(f"--oof file not found: {path}", OOF_HINT)
    oof = read_csv_text(path)
    classes = _oof_classes(oof, path)
    probs = _oof_probabilities(oof, classes, path)
    notes = _oof_ids(oof, train, path)
    index = {c: k for k, c in enumerate(classes)}
    return Oof(
        ids=oof["id"].tolist(),
        labels=np.array([index[v] for v in oof["label"]]),
        probs=probs,
        classes=classes,
        notes=notes,
    )


def find_label_issues(oof: Oof) -> pd.DataFrame:
    """Confident learning: the rows whose given label the out-of-fold model doubts, worst first.

    Columns: row (position in the OOF file), quality (cleanlab's self-confidence label quality),
    given, suggested, suggested_prob, given_prob."""
    from cleanlab.filter import find_label_issues as cl_find
    from cleanlab.rank import get_label_quality_scores

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cleanlab warns about classes without examples; not an error here
        try:
            ranked = cl_find(
                oof.labels,
                oof.probs,
                filter_by="prune_by_noise_rate",
                return_indices_ranked_by="self_confidence",
                n_jobs=1,
            )
            quality = get_label_quality_scores(oof.labels, oof.probs, method="self_confidence")
        except (ValueError, AssertionError) as exc:
            raise ArtkitError(
                f"cleanlab could not analyse the out-of-fold predictions: {exc}",
                "check that the OOF file covers the classes of the training set",
            ) from None
    ranked = np.asarray(ranked, dtype=int)
    pred = oof.probs.argmax(axis=1)
    return pd.DataFrame(
        {
            "row": ranked,
            "quality": quality[ranked],
            "given": [oof.classes[oof.labels[i]] for i in ranked],
            "suggested": [oof.classes[pred[i]] for i in ranked],
            "suggested_prob": oof.probs[ranked, pred[ranked]],
            "given_prob": oof.probs[ranked, oof.labels[ranked]],
        }
    )


# ---------------------------------------------------------------- finding the issues


@dataclass(kw_only=True)
class Finding:
    set: str  # "train" or "test"
    row: int
    issue: str
    detail: str
    droppable: bool = False  # the policy drops it when its issue is in --drop
    keep_text: str | None = None  # the action shown when it is kept


@dataclass(kw_only=True)
class Scanned:
    """A dataset with its scan facts and duplicates: what every issue finder reads."""

    source: DataSource
    train: pd.DataFrame
    test: pd.DataFrame | None
    tr: pd.DataFrame  # scan facts of the training rows, same positions
    te: pd.DataFrame | None
    dups: Duplicates
    ids: np.ndarray
    labels: np.ndarray  # after --fix
    relabelled: np.ndarray
    scan_info: dict = field(default_factory=dict)

    def who(self, i: int) -> str:
        return f"{self.ids[i]} ({self.labels[i]})" if self.labels[i].strip() else f"{self.ids[i]} (no label)"

    def labelled(self, i: int) -> bool:
        return bool(self.labels[i].strip())

    def rows_by_id(self) -> dict[str, list[int]]:
        by_id: dict[str, list[int]] = defaultdict(list)
        for i, v in enumerate(self.ids):
            by_id[v].append(i)
        return by_id


def _list(items: list[str], limit: int = 5) -> str:
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def find_unreadable(s: Scanned) -> list[Finding]:
    """Missing, zero-byte, truncated or not-an-image files, and images over the decompression-bomb limit."""
    out = []
    for which, scan in (("train", s.tr), ("test", s.te)):
        if scan is None:
            continue
        for i in np.flatnonzero(~scan["readable"].astype(bool).to_numpy()):
            kind, error = scan.at[i, "error_kind"], scan.at[i, "error"]
            issue = "too-large" if kind == "too-large" else "unreadable"
            prefix = "test image; " if which == "test" else ""
            out.append(
                Finding(
                    set=which, row=int(i), issue=issue, detail=f"{prefix}{kind}: {error}", droppable=which == "train"
                )
            )
    return out


def find_empty_labels(s: Scanned) -> list[Finding]:
    return [
        Finding(set="train", row=int(i), issue="empty-label", detail="the label cell is empty", droppable=True)
        for i in np.flatnonzero([not v.strip() for v in s.labels])
    ]


def find_duplicate_ids(s: Scanned) -> list[Finding]:
    """Ids on several rows: with conflicting labels every row of the id is doubtful, else all but the first."""
    out = []
    line = 2 if s.source.layout == "csv" else None  # data rows start on CSV line 2
    for rows in s.rows_by_id().values():
        if len(rows) < 2:
            continue
        conflict = len({s.labels[i] for i in rows}) > 1
        where = f" (CSV lines {', '.join(str(i + line) for i in rows)})" if line else ""
        labels = (
            f" with different labels: {_list(sorted({str(s.labels[j]) for j in rows}))}"
            if conflict
            else " with the same label"
        )
        for k, i in enumerate(rows):
            out.append(
                Finding(
                    set="train",
                    row=i,
                    issue="duplicate-id",
                    detail=f"id appears {len(rows)} times{where}{labels}",
                    droppable=conflict or k > 0,
                    keep_text=None if conflict or k else "keep (first row of the id)",
                )
            )
    return out


def find_exact_duplicates(s: Scanned) -> list[Finding]:
    """Groups of identical training images: all but the first copy can go."""
    out = []
    for group in s.dups.exact_groups:
        for k, i in enumerate(group):
            others = [s.who(j) for j in group if j != i]
            out.append(
                Finding(
                    set="train",
                    row=i,
                    issue="exact-duplicate",
                    detail=f"same pixels as {_list(others)}",
                    droppable=k > 0,
                    keep_text="keep (first copy)" if k == 0 else None,
                )
            )
    return out


def _clusters(n: int, pairs: list[tuple[int, int, int]]) -> list[int]:
    """Union-find root of each row over the near pairs (the root is the cluster's first row)."""
    parent = list(range(n))

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i, j, _ in pairs:
        a, b = root(i), root(j)
        parent[max(a, b)] = min(a, b)
    return [root(x) for x in range(n)]


def find_near_duplicates(s: Scanned) -> list[Finding]:
    """Near-duplicate training images: all but the first of each connected cluster can go."""
    near: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for i, j, d in s.dups.near_pairs:
        near[i].append((j, d))
        near[j].append((i, d))
    roots = _clusters(len(s.ids), s.dups.near_pairs)
    out = []
    for i in sorted(near):
        first = roots[i] == i
        partners = [f"{s.who(j)} at distance {d}" for j, d in sorted(near[i], key=lambda p: p[1])]
        out.append(
            Finding(
                set="train",
                row=i,
                issue="near-duplicate",
                detail=f"looks like {_list(partners)}",
                droppable=not first,
                keep_text="keep (first of its cluster)" if first else None,
            )
        )
    return out


def find_conflicting_labels(s: Scanned) -> list[Finding]:
    """Exact or near duplicates that carry different (non-empty) labels."""
    conflicts: dict[int, list[str]] = defaultdict(list)

    def differ(a: int, b: int) -> bool:
        return s.labels[a] != s.labels[b] and s.labelled(a) and s.labelled(b)

    for group in s.dups.exact_groups:
        for i in group:
            conflicts[i] += [f"identical to {s.who(j)}" for j in group if j != i and differ(i, j)]
    for i, j, d in s.dups.near_pairs:
        for a, b in ((i, j), (j, i)):
            if differ(a, b):
                conflicts[a].append(f"near-duplicate of {s.who(b)} (distance {d})")
    return [
        Finding(
            set="train",
            row=i,
            issue="conflicting-labels",
            droppable=True,
            detail=f"labelled '{s.labels[i]}' but {_list(conflicts[i])}",
        )
        for i in sorted(conflicts)
        if conflicts[i]
    ]


def find_leaks(s: Scanned) -> list[Finding]:
    """Training images that are also in the test set (reported on both sides; only the training row can go)."""
    if s.te is None or s.test is None:
        return []
    out, leaked = [], defaultdict(list)
    for i, t, d, exact in s.dups.leaks:
        how = "identical" if exact else f"distance {d}"
        leaked[i].append(f"{s.test.at[t, 'id']} ({how})")
        out.append(
            Finding(
                set="test",
                row=t,
                issue="train-test-leak",
                detail=f"test image; a copy of training image {s.who(i)} ({how})",
            )
        )
    out += [
        Finding(
            set="train",
            row=i,
            issue="train-test-leak",
            detail=f"also in the test set as {_list(copies)}",
            droppable=True,
        )
        for i, copies in sorted(leaked.items())
    ]
    return out


def find_grayscale(s: Scanned) -> list[Finding]:
    gray = s.tr["readable"].astype(bool).to_numpy() & s.tr["is_grayscale"].astype(bool).to_numpy()
    return [
        Finding(
            set="train",
            row=int(i),
            issue="grayscale",
            droppable=True,
            detail=f"stored as mode {s.tr.at[i, 'mode']}" if s.tr.at[i, "stored_gray"] else "RGB with equal channels",
        )
        for i in np.flatnonzero(gray)
    ]


def find_tiny(s: Scanned, min_size: int) -> list[Finding]:
    tr = s.tr
    small = tr["readable"].astype(bool).to_numpy() & (
        np.minimum(tr["width"].to_numpy(), tr["height"].to_numpy()) < min_size
    )
    return [
        Finding(
            set="train",
            row=int(i),
            issue="tiny",
            droppable=True,
            detail=f"{tr.at[i, 'width']}x{tr.at[i, 'height']} px, smaller side below --min-size {min_size}",
        )
        for i in np.flatnonzero(small)
    ]


def find_label_findings(s: Scanned, oof: Oof) -> tuple[list[Finding], pd.DataFrame]:
    """Likely label errors from out-of-fold predictions, and their table (worst first) for label_issues.csv."""
    first_row = {v: rows[0] for v, rows in s.rows_by_id().items()}
    table = find_label_issues(oof)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    table.insert(1, "id", [oof.ids[r] for r in table["row"]])
    table.insert(2, "file", [s.train.at[first_row[v], "path"] for v in table["id"]])
    out = []
    for rank, r in enumerate(table.itertuples(index=False), start=1):
        i = first_row[r.id]
        fixed = bool(s.relabelled[i])
        out.append(
            Finding(
                set="train",
                row=i,
                issue="label-issue",
                droppable=not fixed,
                detail=f"labelled '{r.given}' (p={r.given_prob:.2f}), model predicts '{r.suggested}' "
                f"(p={r.suggested_prob:.2f}); label quality {r.quality:.3f}, rank {rank} of {len(table)}",
                keep_text=f"relabelled to '{s.labels[i]}' by --fix"
                if fixed
                else f"review; relabel with --fix (suggested: {r.suggested})",
            )
        )
    return out, table.drop(columns=["row"])


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
            action = f.keep_text or _KEEP_TEXT.get(f.issue, "keep")
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


def find_all(s: Scanned, config: CleanConfig, oof: Oof | None) -> tuple[list[Finding], pd.DataFrame | None]:
    findings = (
        find_unreadable(s)
        + find_empty_labels(s)
        + find_duplicate_ids(s)
        + find_exact_duplicates(s)
        + find_near_duplicates(s)
        + find_conflicting_labels(s)
        + find_leaks(s)
        + find_grayscale(s)
        + find_tiny(s, config.min_size)
    )
    if oof is None:
        return findings, None
    label_findings, label_table = find_label_findings(s, oof)
    return findings + label_findings, label_table


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
    notes = (oof.notes if oof else []) + data_notes(source, labels)
    findings, label_table = find_all(s, config, oof)
    reason = drop_reasons(findings, drop)
    issues = issue_table(findings, reason, s)
    keep = np.array([i not in reason for i in range(len(s.train))], dtype=bool)
    return write_outputs(config, s, findings, issues, reason, keep, label_table, drop, notes)


def write_outputs(
    config: CleanConfig,
    s: Scanned,
    findings: list[Finding],
    issues: pd.DataFrame,
    reason: dict[int, str],
    keep: np.ndarray,
    label_table: pd.DataFrame | None,
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
    if label_table is not None:
        label_csv = out / "label_issues.csv"
        write_csv(label_csv, label_table, float_format="%.4f")
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
