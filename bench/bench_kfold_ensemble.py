"""k-fold on real paintings: CV macro-F1, and the fold ensemble against its best member on held-out quarter crops.

    python bench/bench_kfold_ensemble.py bench/_work/split --weights bench/_work/lite0_tf.pt [--folds 3 --epochs 2]

SPLIT is the folder written by ``bench/make_crop_split.py`` (train.csv with 80 % of the paintings,
holdout_crops.csv with one quarter crop at half resolution of each held-out painting); the weights
file is ``bench/convert_lite0.py --no-fix`` output for timm's ``tf_efficientnet_lite0`` (or its default output
with ``--model efficientnet_lite0``). Every step is the
artkit CLI, so the printed commands are what a user would type. The CV scores and each ensemble's scores are
also appended as rows to ``--results`` (default bench/results/kfold_ensemble.csv).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path


def artkit(*args: str) -> str:
    exe = Path(sys.executable).with_name("artkit")
    cmd = [str(exe) if exe.exists() else "artkit", *args]
    print("$ artkit " + " ".join(args), flush=True)
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(done.stdout + done.stderr)
    return done.stdout


def member_scores(printed: str) -> dict[str, float]:
    """Each fold's macro-F1 from the members table ``artkit ensemble`` prints (the last column of its row)."""
    found = (re.search(r"fold(\d+)/best\.pt.*?(\d\.\d+)\s*$", line) for line in printed.splitlines())
    return {f"fold{m[1]}_macro_f1": float(m[2]) for m in found if m}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("split", type=Path)
    ap.add_argument("--weights", type=Path, required=True)
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--img-size", type=int, default=128)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "_work" / "runs")
    ap.add_argument("--name", default="kfold3")
    ap.add_argument(
        "--model",
        default="tf_efficientnet_lite0",
        help="timm model the weights fit (tf_efficientnet_lite0 for convert_lite0.py --no-fix output)",
    )
    ap.add_argument(
        "--extra",
        default="--lr 3e-3 --layer-decay 0.85 --batch-size 16 --warmup-epochs 0.2 --sampler sqrt",
        help="further `artkit train` options",
    )
    ap.add_argument("--results", type=Path, default=Path(__file__).parent / "results" / "kfold_ensemble.csv")
    args = ap.parse_args()
    from results import append_row, invocation  # bench/results.py, beside this script

    run = args.out / args.name
    train_s = None  # measured only when this invocation trains
    if not (run / "cv.json").exists():
        start = time.perf_counter()
        artkit(
            "train",
            "--data",
            str(args.split),
            "--train-csv",
            str(args.split / "train.csv"),
            "--model",
            args.model,
            "--weights",
            str(args.weights),
            "--img-size",
            str(args.img_size),
            "--epochs",
            str(args.epochs),
            "--aug",
            "crop",
            "--folds",
            str(args.folds),
            "--workers",
            str(args.workers),
            "--out",
            str(args.out),
            "--name",
            args.name,
            *args.extra.split(),
        )
        train_s = time.perf_counter() - start
        print(f"k-fold training: {train_s:.0f} s")
    cv = json.loads((run / "cv.json").read_text())
    print(
        f"CV macro-F1 {cv['cv_macro_f1_mean']:.4f} ± {cv['cv_macro_f1_std']:.4f} "
        f"(OOF over {cv['rows']} rows: {cv['oof_macro_f1']:.4f})"
    )
    common = {"folds": args.folds, "epochs": args.epochs, "budget": f"{args.epochs} epochs"}
    append_row(
        args.results,
        invocation(),
        **common,
        scored_on="cross-validation",
        tta="none",
        **{f"fold{f['fold']}_macro_f1": f"{f['val_macro_f1']:.3f}" for f in cv["folds"]},
        cv_macro_f1=f"{cv['cv_macro_f1_mean']:.3f}",
        cv_std=f"{cv['cv_macro_f1_std']:.3f}",
        oof_macro_f1=f"{cv['oof_macro_f1']:.3f}",
        seconds=None if train_s is None else f"{train_s:.0f}",
    )
    members = [str(run / f"fold{i}" / "best.pt") for i in range(args.folds)]
    for tta in ("none", "hflip"):
        out = artkit(
            "ensemble",
            *members,
            "--csv",
            str(args.split / "holdout_crops.csv"),
            "--data",
            str(args.split),
            "--tta",
            tta,
            "--workers",
            str(args.workers),
            "-o",
            str(run / f"holdout_ensemble_{tta}.csv"),
        )
        print(out)
        folds = member_scores(out)
        ensemble = re.search(r"ensemble macro-F1 (\d\.\d+)", out)
        best = max(folds.values(), default=None)
        gain = f"{float(ensemble[1]) - best:+.3f} ({float(ensemble[1]) / best:.2f}x)" if ensemble and best else None
        append_row(
            args.results,
            invocation(),
            **common,
            scored_on="held-out quarter crops",
            tta=tta,
            **{k: f"{v:.3f}" for k, v in folds.items()},
            ensemble_macro_f1=f"{float(ensemble[1]):.3f}" if ensemble else None,
            vs_best_member=gain,
        )


if __name__ == "__main__":
    main()
