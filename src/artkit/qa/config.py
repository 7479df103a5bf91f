"""Options of ``artkit eda`` and ``artkit clean``, each written once (see :mod:`artkit.options`)."""

from __future__ import annotations

from dataclasses import dataclass

from artkit.data.options import ColumnNames, DataFolder, Tables
from artkit.options import option
from artkit.qa.issues import DEFAULT_DROP, DROP_WORDS, ISSUES

SCAN_PANEL, OUTPUT_PANEL = "Scan", "Output"


@dataclass(kw_only=True)
class ScanOptions:
    """How images are scanned: shared by eda and clean."""

    workers: int | None = option(
        None, "Decoding processes (default: one per CPU core, at most 8).", short="-w", panel=SCAN_PANEL, min=1
    )
    near_threshold: int = option(
        8,
        "pHash Hamming distance (of 64 bits) for near duplicates and train-test leaks; 0 = only visually identical.",
        panel=SCAN_PANEL,
        min=0,
        max=64,
    )
    min_size: int = option(
        32, "Images whose smaller side is below this many pixels count as tiny.", panel=SCAN_PANEL, min=0
    )
    cache: bool = option(
        True,
        "Reuse the facts of images scanned before (cache in $ARTKIT_CACHE_DIR, default "
        "~/.cache/artkit); --no-cache decodes every image again.",
        negatable=True,
        panel=SCAN_PANEL,
    )


@dataclass(kw_only=True)
class EdaConfig(ScanOptions, ColumnNames, Tables, DataFolder):
    out: str = option("eda", "Output folder for report.html, eda.json and the PNGs.", panel=OUTPUT_PANEL)
    min_count: int = option(30, "Name the classes with fewer training images than this.", panel=OUTPUT_PANEL, min=0)
    per_class: int = option(5, "Images per class on the contact sheet.", panel=OUTPUT_PANEL, min=0, max=50)


@dataclass(kw_only=True)
class CleanConfig(ScanOptions, ColumnNames, Tables, DataFolder):
    out: str = option("clean", "Output folder for issues.csv, train_clean.csv, flagged.png.", panel=OUTPUT_PANEL)
    drop: list[str] = option(
        help="Issues whose rows train_clean.csv leaves out, comma-separated, or none / all. "
        "Issues: " + ", ".join(ISSUES) + ".",
        factory=lambda: list(DEFAULT_DROP),
        panel=OUTPUT_PANEL,
        choices=lambda: [*ISSUES, *DROP_WORDS],
    )
    fix: str | None = option(
        None, "CSV id,label of relabels to apply to train_clean.csv.", panel=OUTPUT_PANEL, reads=True
    )
    allow_new_class: bool = option(
        False,
        "Let --fix give labels that no training row has (a new class); without it such a label is refused as a "
        "likely typo.",
        panel=OUTPUT_PANEL,
    )
    oof: str | None = option(
        None,
        "Out-of-fold probabilities (id,label,<one column per class>) from k-fold training: finds label-issue rows.",
        panel=OUTPUT_PANEL,
        reads=True,
    )
