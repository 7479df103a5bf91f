"""Loader processes on a CPU: does ``artkit train`` (and ``predict``) run faster with images loaded in the main
process, between steps, or with loader processes beside the model's threads? Each is a ratio against a bare loop
measured just before and just after it, on the same machine.

    python bench/bench_cpu_workers.py ../shared/data/paintings50 --workers 0,2 --pairs 2

* **train**: the images/s of the second epoch of ``artkit train`` (the first fills the decode cache) on the first
  ``--train-images`` paintings, against a bare training step on pre-made tensors (forward, backward, AdamW);
* **predict**: ``artkit predict`` over ``--predict-images`` paintings, with a cold decode cache and then a filled
  one, against a bare no-grad forward (and a forward of the fused model, which is what predict runs).

The configurations alternate ``--pairs`` times, so a machine that slows down during the run slows each of them.
One CSV row per measurement (bench/results/cpu_workers.csv).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_gpu import bare_images_per_s
from results import append_row, invocation


def subset(root: Path, images: int, out: Path) -> Path:
    """A Dacon-layout folder whose train.csv (and test.csv) name the first ``images`` paintings of ``root``."""
    table = pd.read_csv(root / "train.csv").head(images)
    table["img_path"] = [str((root / p).resolve()) for p in table["img_path"]]
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "train.csv", index=False)
    table[["id", "img_path"]].to_csv(out / "test.csv", index=False)
    return out


def bare(args, train: bool, fused: bool = False) -> float:
    return bare_images_per_s(args.model, args.img_size, args.batch, torch.device("cpu"), "off", train, 30, fused)


def train_rate(data: Path, runs: Path, workers: int, args) -> tuple[float, float]:
    """The second epoch's images/s and the seconds it waited for the loader."""
    from artkit.engine.config import TrainConfig
    from artkit.engine.train_command import train
    from artkit.progress import Reporter

    cfg = TrainConfig(
        data=str(data),
        model=args.model,
        pretrained=False,
        img_size=args.img_size,
        batch_size=args.batch,
        epochs=2,
        amp="off",
        device="cpu",
        workers=workers,
        out=str(runs),
        name=f"workers{workers}",
        aug=args.aug,
        val_fraction=0.05,
    )
    row = train(cfg, Reporter()).rows[-1]
    return float(row["images_per_s"]), float(row["data_wait_s"])


def predict_rates(checkpoint: Path, data: Path, workers: int, args) -> tuple[float, float]:
    """Images/s of ``artkit predict`` (start-up included) with a cold decode cache, then with the filled one."""
    from artkit.inference.config import PredictConfig
    from artkit.inference.predict import run_predict

    os.environ["ARTKIT_CACHE_DIR"] = tempfile.mkdtemp(dir=data.parent)  # cold
    cfg = PredictConfig(
        checkpoint=str(checkpoint),
        data=str(data),
        out=str(data.parent / "submission.csv"),
        batch_size=args.batch,
        workers=workers,
        device="cpu",
        amp="off",
        tta="none",
    )
    rates = []
    for _ in range(2):
        start = time.perf_counter()
        rates.append(run_predict(cfg).rows / (time.perf_counter() - start))
    return rates[0], rates[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data", type=Path, help="a Dacon-layout folder of paintings (train.csv)")
    p.add_argument("--workers", default="0,2", help="comma-separated loader process counts to compare")
    p.add_argument("--pairs", type=int, default=2)
    p.add_argument("--model", default="tf_efficientnet_lite0")
    p.add_argument("--img-size", type=int, default=128)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--aug", default="light")
    p.add_argument("--train-images", type=int, default=700)
    p.add_argument("--predict-images", type=int, default=1000)
    p.add_argument("--results", default=str(Path(__file__).parent / "results" / "cpu_workers.csv"))
    args = p.parse_args()
    counts = [int(w) for w in args.workers.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ["ARTKIT_CACHE_DIR"] = str(tmp / "cache")
        train_data = subset(args.data, args.train_images, tmp / "train")
        predict_data = subset(args.data, args.predict_images, tmp / "predict")
        for pair in range(args.pairs):
            for workers in counts:
                os.environ["ARTKIT_CACHE_DIR"] = str(tmp / f"cache_{pair}_{workers}")  # each run fills its own
                before = bare(args, True)
                ips, waited = train_rate(train_data, tmp / "runs", workers, args)
                after = bare(args, True)
                step = (before + after) / 2
                common = dict(pair=pair, workers=workers, model=args.model, img_size=args.img_size, batch=args.batch)
                append_row(
                    args.results,
                    invocation(),
                    phase="train",
                    **common,
                    aug=args.aug,
                    images=args.train_images,
                    artkit_ips=round(ips, 1),
                    bare_ips=round(step, 1),
                    ratio=round(ips / step, 3),
                    data_wait_s=round(waited, 2),
                )
                checkpoint = tmp / "runs" / f"workers{workers}" / "best.pt"
                forward, fused = bare(args, False), bare(args, False, fused=True)
                cold, warm = predict_rates(checkpoint, predict_data, workers, args)
                forward, fused = (forward + bare(args, False)) / 2, (fused + bare(args, False, fused=True)) / 2
                for phase, rate in (("predict_cold", cold), ("predict_warm", warm)):
                    append_row(
                        args.results,
                        invocation(),
                        phase=phase,
                        **common,
                        aug="none",
                        images=args.predict_images,
                        artkit_ips=round(rate, 1),
                        bare_ips=round(forward, 1),
                        ratio=round(rate / forward, 3),
                        fused_ips=round(fused, 1),
                        ratio_fused=round(rate / fused, 3),
                    )
                print(
                    f"pair {pair} workers {workers}: train {ips / step:.3f}x a bare step (waited {waited:.2f} s); "
                    f"predict {cold / forward:.3f}x a bare forward cold, {warm / forward:.3f}x warm "
                    f"({cold / fused:.3f}x / {warm / fused:.3f}x the fused model's)",
                    flush=True,
                )
                shutil.rmtree(tmp / "runs", ignore_errors=True)


if __name__ == "__main__":
    main()
