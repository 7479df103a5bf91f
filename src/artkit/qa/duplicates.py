"""Duplicates among training images and between train and test, from the facts of a scan.

Exact duplicates have the same pixels (or bytes); near duplicates have close pHashes whose 16x16
thumbnails also correlate (see :mod:`artkit.qa.scan`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from artkit.qa.scan import COLUMNS, NEAR_MIN_CORRELATION, PIXEL_CHECK_DISTANCE, fill_pixel_hashes


def hash_array(hex_hashes: Iterable[str]) -> np.ndarray:
    """pHash hex strings -> uint64 array (unreadable files must be filtered out first)."""
    return np.array([int(h, 16) for h in hex_hashes], dtype=np.uint64)


def _popcount(x: np.ndarray) -> np.ndarray:
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(x)
    b = x.view(np.uint8).reshape(*x.shape, 8)
    return np.unpackbits(b, axis=-1).sum(axis=-1)


def hamming_pairs(
    a: np.ndarray, b: np.ndarray | None = None, threshold: int = 6, block: int = 256
) -> list[tuple[int, int, int]]:
    """Pairs (i, j, distance) with pHash Hamming distance <= threshold: within ``a`` (i < j),
    or between ``a`` and ``b``. Blocked so memory stays small; 10k x 10k takes about a second."""
    out: list[tuple[int, int, int]] = []
    other = a if b is None else b
    if len(a) == 0 or len(other) == 0 or threshold < 0:
        return out
    for start in range(0, len(a), block):
        chunk = a[start : start + block]
        dist = _popcount(chunk[:, None] ^ other[None, :])
        ii, jj = np.nonzero(dist <= threshold)
        for i, j in zip(ii.tolist(), jj.tolist()):
            gi = start + i
            if b is None and j <= gi:
                continue
            out.append((gi, j, int(dist[i, j])))
    return out


def thumb_correlation(a_hex: str, b_hex: str) -> float:
    """Pearson correlation of two 16x16 grayscale thumbnails (1.0 = same picture up to brightness/contrast).
    Two flat images (no structure to correlate) count as alike when their brightness is close."""
    a = np.frombuffer(bytes.fromhex(a_hex), np.uint8).astype(np.float64)
    b = np.frombuffer(bytes.fromhex(b_hex), np.uint8).astype(np.float64)
    if a.std() < 1 or b.std() < 1:
        return 1.0 if abs(a.mean() - b.mean()) < 8 else 0.0
    return float(np.corrcoef(a, b)[0, 1])


def exact_keys(table: pd.DataFrame) -> pd.Series:
    """Exact-identity key per row: the full-pixel hash where known, else the file-bytes hash;
    '' for unreadable rows. Call after :func:`fill_pixel_hashes` on the candidate pairs."""
    pixel = table["pixel_md5"].where(table["pixel_md5"] != "")
    # byte-identical files have identical pixels: share a pixel hash known for any of them (one copy
    # may have had it computed, and cached, in an earlier run with other candidates)
    pixel = pixel.fillna(pixel.groupby(table["file_md5"]).transform("first"))
    keys = np.where(pixel.notna(), "p:" + pixel.fillna(""), "f:" + table["file_md5"])
    return pd.Series(np.where(table["readable"].astype(bool), keys, ""), index=table.index)


def candidate_rows(table: pd.DataFrame, pairs: Iterable[tuple[int, int, int]]) -> set[int]:
    """Rows of near pairs that might be pixel-identical: same size, close hashes, different bytes."""
    rows: set[int] = set()
    for i, j, d in pairs:
        if d > PIXEL_CHECK_DISTANCE:
            continue
        a, b = table.loc[i], table.loc[j]
        if (a["width"], a["height"]) == (b["width"], b["height"]) and a["file_md5"] != b["file_md5"]:
            rows.update((i, j))
    return rows


@dataclass(kw_only=True)
class Duplicates:
    """Duplicates among the readable images of a train table and between train and test.

    Indices are row positions of the train (``i``) and test (``t``) tables."""

    exact_groups: list[list[int]] = field(default_factory=list)  # train rows with identical pixels
    near_pairs: list[tuple[int, int, int]] = field(default_factory=list)  # (i, j, distance), not exact
    leaks: list[tuple[int, int, int, bool]] = field(default_factory=list)  # (i, t, distance, exact)
    pixel_decodes: int = 0


def find_duplicates(
    train: pd.DataFrame,
    test: pd.DataFrame | None,
    near_threshold: int,
    workers: int | None = None,
    use_cache: bool = True,
    cache_folder: Path | None = None,
    executor: str = "process",
) -> Duplicates:
    """Exact groups and near pairs within ``train``, and train->test copies. ``train``/``test``
    are scan tables with a 0..n-1 index; pixel hashes are filled in for candidate rows."""
    test = test if test is not None else pd.DataFrame(columns=COLUMNS)
    both = pd.concat([train, test], ignore_index=True)
    n = len(train)
    ok = np.flatnonzero(both["readable"].astype(bool).to_numpy() & (both["phash"] != "").to_numpy())
    hashes = hash_array(both["phash"].iloc[ok])
    radius = max(near_threshold, PIXEL_CHECK_DISTANCE)
    pairs = [(int(ok[i]), int(ok[j]), d) for i, j, d in hamming_pairs(hashes, threshold=radius)]
    # byte-identical files give the same key without decoding; same-size close pairs get a pixel hash
    decodes = fill_pixel_hashes(both, candidate_rows(both, pairs), workers, use_cache, cache_folder, executor)
    keys = exact_keys(both)
    dup = Duplicates(pixel_decodes=decodes)
    train_keys = keys.iloc[:n]
    groups = train_keys[train_keys != ""].groupby(train_keys[train_keys != ""]).groups
    dup.exact_groups = sorted(sorted(int(i) for i in idx) for idx in groups.values() if len(idx) > 1)
    # exact copies of one test image among themselves are not leaks of interest; train<->test are
    test_by_key: dict[str, list[int]] = {}
    for t in range(n, len(both)):
        if keys.iloc[t]:
            test_by_key.setdefault(keys.iloc[t], []).append(t - n)
    seen: set[tuple[int, int]] = set()
    for i in range(n):
        for t in test_by_key.get(keys.iloc[i], []) if keys.iloc[i] else []:
            dup.leaks.append((i, t, 0, True))
            seen.add((i, t))
    thumbs = both["thumb16"].to_numpy()
    for i, j, d in pairs:
        if d > near_threshold or (
            keys.iloc[i] != keys.iloc[j] and thumb_correlation(thumbs[i], thumbs[j]) < NEAR_MIN_CORRELATION
        ):
            continue
        if i < n and j < n:
            if keys.iloc[i] != keys.iloc[j]:
                dup.near_pairs.append((i, j, d))
        elif i < n <= j and (i, j - n) not in seen:
            dup.leaks.append((i, j - n, d, False))
            seen.add((i, j - n))
    # copy the filled-in pixel hashes back so callers see them
    train["pixel_md5"] = both["pixel_md5"].iloc[:n].to_numpy()
    if len(test):
        test["pixel_md5"] = both["pixel_md5"].iloc[n:].to_numpy()
    dup.leaks.sort()
    return dup
