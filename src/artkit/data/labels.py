"""Label spellings: surrounding whitespace (stripped) and near-identical names (reported)."""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterable

SIMILAR_RATIO = 0.9  # difflib similarity from which two class names are reported as near-identical
MAX_FUZZY = 300  # classes beyond this are compared by their folded spelling only (pairs grow quadratically)


def fold_spelling(label: str) -> str:
    """A label without accents, case, spaces and punctuation: 'Albrecht Dürer' and 'albrecht du rer' fold alike."""
    decomposed = unicodedata.normalize("NFKD", label)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return re.sub(r"[\W_]+", "", plain.casefold())


def similar_labels(labels: Iterable[str]) -> list[tuple[str, str]]:
    """Pairs of distinct class names that are probably one class spelled two ways."""
    names = sorted(set(labels))
    pairs = set()
    by_fold: dict[str, list[str]] = {}
    for name in names:
        by_fold.setdefault(fold_spelling(name), []).append(name)
    for group in by_fold.values():
        pairs |= {(a, b) for i, a in enumerate(group) for b in group[i + 1 :]}
    if len(names) <= MAX_FUZZY:
        folded = {n: fold_spelling(n) for n in names}
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                if difflib.SequenceMatcher(None, folded[a], folded[b]).ratio() >= SIMILAR_RATIO:
                    pairs.add((a, b))
    return sorted(pairs)


def stripped_labels(labels) -> tuple[list[str], int, str | None]:
    """Labels without surrounding whitespace, how many had some, and one example as it was."""
    out, changed, example = [], 0, None
    for label in labels:
        clean = label.strip()
        if clean != label:
            changed += 1
            example = example or label
        out.append(clean)
    return out, changed, example
