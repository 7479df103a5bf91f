"""The issues ``artkit clean`` finds: one registry of each issue's name, description, what keeping it means and
the function that finds it. A new issue is one entry here and one finder.

This module is light (no numpy or pandas) so that ``artkit --help`` stays instant; finders are imported when
clean runs.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Issue:
    description: str  # for --help and docs
    kept: str  # the action issues.csv shows when the drop policy keeps a row with it (a finding may say more)
    finder: str  # "module:function" under artkit.qa; the function takes (Scanned, CleanConfig), returns Findings


ISSUES = {
    "unreadable": Issue(
        "missing, empty, truncated or not an image",
        "keep (training will fail on it; drop with --drop unreadable)",
        "finders:find_unreadable",
    ),
    "too-large": Issue(
        "more pixels than Pillow's decompression-bomb limit",
        "keep (training will fail on it; drop with --drop too-large)",
        "finders:find_unreadable",
    ),
    "empty-label": Issue(
        "the label cell is empty",
        "keep (training refuses empty labels; fill it with --fix)",
        "finders:find_empty_labels",
    ),
    "duplicate-id": Issue("an id on several rows", "keep", "finders:find_duplicate_ids"),
    "exact-duplicate": Issue("the same pixels as another training image", "keep", "finders:find_exact_duplicates"),
    "conflicting-labels": Issue(
        "an exact or near duplicate with another label",
        "keep (review; relabel with --fix)",
        "finders:find_conflicting_labels",
    ),
    "near-duplicate": Issue("looks like another training image", "keep (review)", "finders:find_near_duplicates"),
    "train-test-leak": Issue(
        "a training image that is also in the test set",
        "keep (its label is also the answer for the test copy)",
        "finders:find_leaks",
    ),
    "label-issue": Issue(
        "the out-of-fold model doubts the label (--oof)",
        "review; relabel with --fix",
        "label_issues:find_label_findings",
    ),
    "grayscale": Issue("no colour", "keep; converted to RGB at load", "finders:find_grayscale"),
    "tiny": Issue("a side below --min-size", "keep; upscaled at load", "finders:find_tiny"),
}
DEFAULT_DROP = ["unreadable", "too-large", "empty-label", "duplicate-id", "exact-duplicate", "conflicting-labels"]
DROP_WORDS = {"none": "keep every row", "all": "drop every issue"}


def finders() -> list[Callable]:
    """Each issue's finder, once, in the registry's order."""
    names = dict.fromkeys(issue.finder for issue in ISSUES.values())
    found = []
    for name in names:
        module, function = name.split(":")
        found.append(getattr(importlib.import_module(f"artkit.qa.{module}"), function))
    return found
