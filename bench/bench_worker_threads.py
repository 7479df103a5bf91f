"""Does one OpenCV thread per loader process pay? ``artkit train`` epochs with each worker on one OpenCV thread
(artkit's loader) against OpenCV's default pool (a thread per core in every worker), alternated A/B in one run.

    python bench/bench_worker_threads.py ../shared/data/paintings50 --images 640 --pairs 2

One row per pair in ``--results`` (default bench/results/worker_threads.csv): the second epoch's training
images/s of each, and their ratio.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from results import append_row, invocation


def subset(data: Path, images: int, out: Path) -> Path:
    """A Dacon-layout copy of ``data``'s table with its first ``images`` rows (paths absolute, no copies)."""
    import pandas as pd

    table = pd.read_csv(data / "train.csv").head(images)
    table["img_path"] = [str((data / p).resolve()) for p in table["img_path"]]
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "train.csv", index=False)
    return out


def epoch_images_per_s(data: Path, out: Path, name: str, args) -> float:
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
        workers=args.workers,
        out=str(out),
        name=name,
        ema=False,
    )
    return float(train(cfg, Reporter()).rows[-1]["images_per_s"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data")
    p.add_argument("--images", type=int, default=640)
    p.add_argument("--pairs", type=int, default=2)
    p.add_argument("--model", default="tf_efficientnet_lite0")
    p.add_argument("--img-size", type=int, default=128)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--results", default=str(Path(__file__).parent / "results" / "worker_threads.csv"))
    args = p.parse_args()
    import artkit.data.dataset as dataset

    one_thread = dataset.start_worker
    with tempfile.TemporaryDirectory() as tmp:
        data = subset(Path(args.data), args.images, Path(tmp) / "data")
        for pair in range(args.pairs):
            speeds = {}
            for variant, init in (("one_thread", one_thread), ("cv2_default", lambda worker_id: None)):
                dataset.start_worker = init  # data_loader reads it when it builds each loader
                speeds[variant] = epoch_images_per_s(data, Path(tmp) / "runs", f"{variant}{pair}", args)
            dataset.start_worker = one_thread
            row = append_row(
                args.results,
                invocation(),
                pair=pair,
                images=args.images,
                model=args.model,
                img_size=args.img_size,
                batch=args.batch,
                workers=args.workers,
                one_thread_ips=round(speeds["one_thread"], 2),
                cv2_default_ips=round(speeds["cv2_default"], 2),
                one_thread_vs_default=round(speeds["one_thread"] / speeds["cv2_default"], 3),
            )
            print(f"pair {pair}: one OpenCV thread per worker {row['one_thread_vs_default']}x OpenCV's default")


if __name__ == "__main__":
    main()
