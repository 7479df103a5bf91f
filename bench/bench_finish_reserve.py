"""Does the time budget's end reserve cover a fresh process's first plots (pyplot's import, the curves and a
50-class confusion matrix)? They are not timed by the planner, so a reserve that is too small makes a short run
end past its budget (a 20-second run ended 22.1 s after it began with a reserve of 1 s).

    python bench/bench_finish_reserve.py [--out bench/results/finish_reserve.csv]

Writes one CSV row: date, commit, machine (lscpu's model), plot seconds, the reserve of a 20-second 50-class
budget, and their ratio (must stay under 1). A benchmark, not a test: it depends on the machine's speed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from results import append_row

FIRST_PLOTS = """
import time
start = time.perf_counter()
import numpy as np
from artkit.plots import plot_confusion, plot_curves
rows = [dict(epoch=e, train_loss=1.0, val_loss=1.0, val_acc=0.5, val_macro_f1=0.5) for e in range(30)]
plot_curves(rows, "curves.png")
plot_confusion(np.eye(50, dtype=int), [f"artist {i}" for i in range(50)], "confusion_matrix.png")
print(time.perf_counter() - start)
"""


def main() -> None:
    from artkit.engine.budget import TimeBudget

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "finish_reserve.csv"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run = [sys.executable, "-c", FIRST_PLOTS]
        subprocess.run(run, cwd=tmp, check=True, capture_output=True)  # builds matplotlib's font cache if absent
        seconds = float(subprocess.run(run, cwd=tmp, check=True, capture_output=True, text=True).stdout)
    reserve = TimeBudget(seconds=20, classes=50).reserve()
    row = append_row(
        args.out,
        "python bench/bench_finish_reserve.py",
        plot_seconds=round(seconds, 2),
        reserve_seconds=reserve,
        ratio=round(seconds / reserve, 3),
    )
    print(row)


if __name__ == "__main__":
    main()
