"""The names of the models artkit can train (timm's), found the way people type them, in well under a second.

timm takes seconds to import, so its name list is cached per timm version in the artkit cache folder; a search
reads only that file. Matching: wildcards (``convnext_*``) as in a shell, otherwise a substring
(``efficientnet``), otherwise the letters in order (``effnet`` finds ``efficientnet_b0``), closest first.
"""

from __future__ import annotations

import contextlib
import fnmatch
import re
from dataclasses import dataclass

from artkit.system import cache_dir


def _timm_version() -> str:
    from importlib.metadata import version

    return version("timm")


def catalog() -> dict[str, bool]:
    """Model name -> whether timm has pretrained weights for it (cached per timm version)."""
    path = cache_dir() / f"timm-{_timm_version()}-models.json"
    from artkit.errors import ArtkitError
    from artkit.reader import read_json

    with contextlib.suppress(ArtkitError):  # no cache yet, or a damaged one: list the models again
        cached = read_json(path)
        if isinstance(cached, dict):
            return cached
    import timm

    pretrained = {name.split(".")[0] for name in timm.list_pretrained()}
    names = {name: name in pretrained for name in timm.list_models()}
    from artkit.writer import write_json

    with contextlib.suppress(ArtkitError):  # a cache that cannot be written only costs speed
        write_json(path, names)
    return names


@dataclass(frozen=True, kw_only=True)
class Found:
    names: list[str]
    how: str  # "all", "wildcard", "substring" or "letters in order"


def _letters_in_order(query: str, name: str) -> int | None:
    """The length of the shortest stretch of ``name`` holding the letters of ``query`` in order, or None."""
    pattern = ".*?".join(re.escape(c) for c in query)
    lengths = [len(m.group(1)) for m in re.finditer(f"(?=({pattern}))", name)]
    return min(lengths) if lengths else None


def find_models(pattern: str = "", pretrained_only: bool = False) -> Found:
    names = catalog()
    pool = sorted(n for n, has in names.items() if has or not pretrained_only)
    query = pattern.strip().lower()
    if not query:
        return Found(names=pool, how="all")
    if any(c in query for c in "*?["):
        return Found(names=[n for n in pool if fnmatch.fnmatch(n.lower(), query)], how="wildcard")
    hits = [n for n in pool if query in n.lower()]
    if hits:
        return Found(names=hits, how="substring")
    spans = {n: s for n in pool if (s := _letters_in_order(query, n.lower())) is not None}
    return Found(names=sorted(spans, key=lambda n: (spans[n], n)), how="letters in order")


# characters people type for one another in model names: efficientnet_bo for b0, resnet5O for resnet50
CONFUSABLE = {frozenset("o0"), frozenset("l1"), frozenset("i1")}


def _edit_distance(a: str, b: str) -> float:
    """Levenshtein distance, where swapping a confusable pair (o/0, l/1, i/1) costs a quarter."""
    previous = [float(j) for j in range(len(b) + 1)]
    for i, ca in enumerate(a, 1):
        current = [float(i)]
        for j, cb in enumerate(b, 1):
            swap = 0.0 if ca == cb else 0.25 if frozenset((ca, cb)) in CONFUSABLE else 1.0
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + swap))
        previous = current
    return previous[-1]


def closest_names(query: str, names: list[str], n: int = 5) -> list[str]:
    """The ``n`` names nearest to ``query`` by edit distance (at most a quarter of its length, and 3), nearest
    first: what a typo most likely meant."""
    query = query.lower()
    limit = min(3.0, max(1.0, len(query) / 4))
    near = [name for name in names if abs(len(name) - len(query)) <= limit]  # farther lengths cannot be near
    scored = sorted((d, name) for name in near if (d := _edit_distance(query, name.lower())) <= limit)
    return [name for _, name in scored[:n]]
