"""bench/bench_cache.py alternates its passes and keeps each round's own ratio."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "bench_cache.py"


def test_the_cache_benchmark_writes_the_median_and_range_of_alternated_rounds(tmp_path: Path):
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 255, (80, 96, 3), dtype=np.uint8)).save(folder / f"{i}.jpg")
    out = tmp_path / "cache.csv"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(folder), "--img-size", "32", "--repeat", "3", "--results", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (row,) = list(csv.DictReader(out.open(encoding="utf-8")))
    low, high = (float(x) for x in row["cached_x_range"].split("-"))
    assert row["images"] == "4" and low <= float(row["cached_x"]) <= high
    assert "median of 3 rounds" in done.stdout
