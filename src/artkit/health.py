"""Whether a model has learned anything: a run whose validation stays near chance, or whose predictions collapse
onto one class, says so loudly (the epoch table, summary.json, ``artkit runs``), and so does a submission that
one class takes over. A silently useless model costs a competitor a day's submissions."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

WARN_AFTER_EPOCHS = 3  # the first epochs of a from-scratch run may still sit at chance
COLLAPSE_SHARE = 0.9  # one class taking this share of the predictions ...
COLLAPSE_TRUE_SHARE = 0.5  # ... while it is less than this share of the true labels
CHANCE_FACTOR = 1.5  # macro-F1 below this times chance (1 / classes) is "near chance"
SUBMISSION_SHARE = 0.5  # a submission in which one class takes more than this share of the rows
MIN_ROWS = 10  # too few predictions to judge


def learning_warning(predicted: np.ndarray, targets: np.ndarray, classes: Sequence[str], macro_f1: float) -> str | None:
    """Why a validation pass looks like a model that learned nothing, or None."""
    n = len(predicted)
    if n < MIN_ROWS or len(classes) < 2:
        return None
    counts = np.bincount(predicted, minlength=len(classes))
    top = int(counts.argmax())
    share = counts[top] / n
    if share >= COLLAPSE_SHARE and np.mean(targets == top) < COLLAPSE_TRUE_SHARE:
        return f"one class ({classes[top]}) takes {share:.0%} of the validation predictions"
    chance = 1 / len(classes)
    if np.isfinite(macro_f1) and macro_f1 < CHANCE_FACTOR * chance:
        return f"validation macro-F1 {macro_f1:.3f} is near chance ({chance:.3f} for {len(classes)} classes)"
    return None


def submission_warning(labels: Sequence[str], n_classes: int) -> str | None:
    """A submission in which one class takes most rows, or None."""
    if len(labels) < MIN_ROWS or n_classes < 3:
        return None
    label, count = Counter(labels).most_common(1)[0]
    share = count / len(labels)
    if share > SUBMISSION_SHARE:
        return (
            f"one class ({label}) takes {share:.0%} of the {len(labels)} rows; a model that learned nothing predicts "
            "one class: check the run's validation scores before submitting"
        )
    return None
