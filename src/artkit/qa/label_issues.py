"""Likely label errors from out-of-fold predictions (``artkit clean --oof``): reading and checking the OOF file,
cleanlab's confident learning, and the ``label-issue`` finder."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from artkit.errors import ArtkitError
from artkit.qa.config import CleanConfig
from artkit.qa.finders import Finding, Scanned
from artkit.reader import read_csv_text

# bookkeeping columns an OOF file may carry besides id, label and the class probabilities
OOF_EXTRA_COLUMNS = ("fold", "pred", "predicted", "prediction", "img_path", "path")


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


def find_label_findings(s: Scanned, config: CleanConfig) -> list[Finding]:
    """Likely label errors from out-of-fold predictions (none without ``--oof``); their table, worst first, is
    kept on ``s.label_table`` for label_issues.csv."""
    if s.oof is None:
        return []
    oof = s.oof
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
    s.label_table = table.drop(columns=["row"])
    return out
