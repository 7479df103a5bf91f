"""Does bf16 inference give the same answers as fp32? ``artkit predict`` of one checkpoint on held-out quarter crops
with ``--amp off`` and ``--amp bf16``, in the same run: macro-F1 of each, their difference, how many predictions
agree, and the speed of bf16 against fp32 (which depends on the CPU: see ``amp_units``).

    python bench/bench_bf16_predict.py bench/_work/runs/bf16check/best.pt bench/_work/split/holdout_crops.csv

One row in ``--results`` (default bench/results/bf16_predict.csv). ``--amp auto`` turns bf16 on for inference
only on CPUs with bf16 instructions (AMX or AVX512-BF16); this checks that the answers it gives there are fp32's.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from results import append_row, invocation


def predict(checkpoint: str, csv: str, amp: str, out: Path, workers: int) -> tuple[float, np.ndarray, float]:
    """(macro-F1, predicted artist per row, wall seconds) of ``artkit predict`` at ``amp`` over ``csv``."""
    import pandas as pd

    from artkit.metrics import summary_metrics

    exe = Path(sys.executable).with_name("artkit")
    out.mkdir(parents=True)
    cmd = [str(exe), "predict", checkpoint, "--csv", csv, "--tta", "none", "--amp", amp, "--workers", str(workers)]
    cmd += ["-o", str(out / "submission.csv")]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    truth = pd.read_csv(csv)["artist"].astype(str).to_numpy()
    predicted = pd.read_csv(out / "submission.csv").iloc[:, 1].astype(str).to_numpy()  # id, then the class
    names = {name: i for i, name in enumerate(sorted(set(truth) | set(predicted)))}
    codes = [np.array([names[v] for v in values]) for values in (truth, predicted)]
    return summary_metrics(*codes)["macro_f1"], predicted, seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint")
    p.add_argument("csv", help="held-out rows with labels (id,img_path,artist), e.g. holdout_crops.csv")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--results", default=str(Path(__file__).parent / "results" / "bf16_predict.csv"))
    args = p.parse_args()
    from artkit.engine.device import cpu_bf16_units

    with tempfile.TemporaryDirectory() as tmp:
        runs = {}
        for amp in ("off", "bf16"):
            runs[amp] = predict(args.checkpoint, args.csv, amp, Path(tmp) / amp, args.workers)
    (fp32, fp32_pred, fp32_s), (bf16, bf16_pred, bf16_s) = runs["off"], runs["bf16"]
    row = append_row(
        args.results,
        invocation(),
        amp_units=cpu_bf16_units() or "no bf16 instructions",
        images=len(fp32_pred),
        fp32_macro_f1=round(fp32, 4),
        bf16_macro_f1=round(bf16, 4),
        bf16_minus_fp32=round(bf16 - fp32, 4),
        same_prediction=round(float((fp32_pred == bf16_pred).mean()), 4),
        bf16_vs_fp32_speed=round(fp32_s / bf16_s, 3),
    )
    print(
        f"macro-F1 fp32 {row['fp32_macro_f1']}, bf16 {row['bf16_macro_f1']} ({row['bf16_minus_fp32']:+}); "
        f"{row['same_prediction']:.1%} of predictions the same; bf16 ran {row['bf16_vs_fp32_speed']}x fp32 "
        f"({row['amp_units']})"
    )


if __name__ == "__main__":
    main()
