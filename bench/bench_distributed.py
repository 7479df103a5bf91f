"""One process against several: training throughput of `artkit train` with DDP (gloo on CPU, NCCL on GPUs).

    python bench/bench_distributed.py SPLIT --weights W [--rows 800] [--devices cpu:2] [--epochs 1]

SPLIT is the folder of ``bench/make_crop_split.py``; the first ``--rows`` training paintings (stratified order of
train.csv) train ``tf_efficientnet_lite0`` at 128 px for ``--epochs``, once as a single process and once with
``--devices`` (interleaved in that order, same command otherwise). Prints images/s per run (from results.csv:
the epochs' own seconds, all ranks together), the speed-up and the scaling efficiency (speed-up / processes),
writes them to OUT/results.json and appends them as one row to ``--results`` (default
bench/results/distributed.csv).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd


def run(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "artkit", "train", *args],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("split", type=Path)
    p.add_argument("--weights", type=Path, required=True)
    p.add_argument("--rows", type=int, default=800)
    p.add_argument("--devices", default="cpu:2")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--out", type=Path, default=Path("bench/_work/distributed"))
    p.add_argument("--results", type=Path, default=Path(__file__).resolve().parent / "results" / "distributed.csv")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    train = pd.read_csv(args.split / "train.csv", dtype=str)
    per_class = (train.groupby("artist")["artist"].transform("size") * args.rows / len(train)).clip(lower=2)
    subset = train[train.groupby("artist").cumcount() < per_class]  # the same share of every artist
    subset.to_csv(args.out / "train.csv", index=False)
    n_proc = int(args.devices.split(":")[1]) if args.devices.startswith("cpu:") else len(args.devices.split(","))
    common = [
        "--train-csv",
        str(args.out / "train.csv"),
        "--data",
        str(args.out),
        "--model",
        "tf_efficientnet_lite0",
        "--weights",
        str(args.weights),
        "--img-size",
        "128",
        "--epochs",
        str(args.epochs),
        "--batch-size",
        "16",
        "--aug",
        "crop",
        "--sampler",
        "sqrt",
        "--out",
        str(args.out / "runs"),
        "--device",
        "cpu" if args.devices.startswith("cpu") else "cuda",
    ]
    env = dict(os.environ, NO_ALBUMENTATIONS_UPDATE="1", HF_HUB_OFFLINE="1")
    results = {}
    for label, extra in (
        ("1 process", ["--workers", "2", "--name", "single"]),
        (f"{n_proc} processes", ["--workers", "1", "--devices", args.devices, "--name", "ddp"]),
    ):
        wall = run(common + extra, env)
        rows = pd.read_csv(args.out / "runs" / extra[-1] / "results.csv")
        results[label] = {
            "wall_s": round(wall, 1),
            "epoch_s": round(float(rows["seconds"].sum()), 1),
            "images_per_s": round(float(rows["images_per_s"].mean()), 1),
            "val_macro_f1": round(float(rows["val_macro_f1"].iloc[-1]), 4),
        }
        print(label, results[label], flush=True)
    one, many = results["1 process"], results[f"{n_proc} processes"]
    speedup = many["images_per_s"] / one["images_per_s"]
    results["speedup"], results["efficiency"] = round(speedup, 3), round(speedup / n_proc, 3)
    print(f"speed-up {speedup:.2f}x, scaling efficiency {speedup / n_proc:.0%}")
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    from results import append_row, invocation  # bench/results.py, beside this script

    append_row(
        args.results,
        invocation(),
        rows=args.rows,
        epochs=args.epochs,
        devices=args.devices,
        single_images_per_s=one["images_per_s"],
        multi_images_per_s=many["images_per_s"],
        speedup=f"{speedup:.2f}",
        efficiency_pct=f"{speedup / n_proc * 100:.0f}",
        single_wall_s=one["wall_s"],
        multi_wall_s=many["wall_s"],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
