"""The finders of ``artkit clean``'s issues (see :mod:`artkit.qa.issues`): each reads a :class:`Scanned` dataset
and returns :class:`Finding` rows."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from artkit.data.layout import DataSource
from artkit.qa.config import CleanConfig
from artkit.qa.duplicates import Duplicates


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
    oof: Any = None  # artkit.qa.label_issues.Oof, with --oof
    label_table: pd.DataFrame | None = None  # label_issues.csv, set by the label-issue finder

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


def find_unreadable(s: Scanned, config: CleanConfig) -> list[Finding]:
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


def find_empty_labels(s: Scanned, config: CleanConfig) -> list[Finding]:
    return [
        Finding(set="train", row=int(i), issue="empty-label", detail="the label cell is empty", droppable=True)
        for i in np.flatnonzero([not v.strip() for v in s.labels])
    ]


def find_duplicate_ids(s: Scanned, config: CleanConfig) -> list[Finding]:
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


def find_exact_duplicates(s: Scanned, config: CleanConfig) -> list[Finding]:
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


def find_near_duplicates(s: Scanned, config: CleanConfig) -> list[Finding]:
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


def find_conflicting_labels(s: Scanned, config: CleanConfig) -> list[Finding]:
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


def find_leaks(s: Scanned, config: CleanConfig) -> list[Finding]:
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


def find_grayscale(s: Scanned, config: CleanConfig) -> list[Finding]:
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


def find_tiny(s: Scanned, config: CleanConfig) -> list[Finding]:
    min_size = config.min_size
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
