"""Cold ``predict`` on a CPU with its images loaded in the main process or by loader processes, against a bare
forward of the fused model over pre-made tensors measured just before and just after, same run.

python bench/bench_predict_loader.py ../shared/data/dacon-sample/test --workers 0,auto --rounds 2

The test set is ``--images`` copies of the folder's images, in turn (Dacon's ten real test crops, 175-1,227 px,
give a test set of real sizes). The checkpoint is ``--model`` trained for one epoch on artkit's demo dataset at
``--img-size`` (its weights do not matter for speed). Every ``predict`` starts with an empty decode cache (the
first pass over a test set, which is the one a competitor runs), with tta none and fp32. ``auto`` is artkit's own
choice of loader processes. The configurations alternate ``--rounds`` times; one CSV row per ``predict``
(default bench/results/predict_loader.csv).
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


def copies(folder: Path, count: int, out: Path) -> Path:
    """A Dacon-layout test set (test.csv) of ``count`` copies of ``folder``'s images, in turn."""
    sources = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    (out / "test").mkdir(parents=True)
    rows = []
    for i in range(count):
        name = f"test/{i:05d}{sources[i % len(sources)].suffix}"
        shutil.copy(sources[i % len(sources)], out / name)
        rows.append({"id": f"P{i:05d}", "img_path": name})
    pd.DataFrame(rows).to_csv(out / "test.csv", index=False)
    return out


def checkpoint(model: str, size: int, out: Path) -> Path:
    from artkit.data.synthetic import make_demo_dataset
    from artkit.engine.config import TrainConfig
    from artkit.engine.train_command import train
    from artkit.progress import Reporter

    data = make_demo_dataset(out / "demo")
    cfg = TrainConfig(
        data=str(data), model=model, pretrained=False, img_size=size, epochs=1, device="cpu", out=str(out / "runs")
    )
    train(cfg, Reporter())
    return next((out / "runs").rglob("best.pt"))


def predict_rate(ckpt: Path, data: Path, workers: int | None, batch: int, cache: Path) -> float:
    from artkit.inference.config import PredictConfig
    from artkit.inference.predict import run_predict

    shutil.rmtree(cache, ignore_errors=True)
    os.environ["ARTKIT_CACHE_DIR"] = str(cache)  # cold: each predict decodes every image
    cfg = PredictConfig(
        checkpoint=str(ckpt),
        data=str(data),
        out=str(data.parent / "submission.csv"),
        batch_size=batch,
        workers=workers,
        device="cpu",
        amp="off",
        tta="none",
    )
    start = time.perf_counter()
    return run_predict(cfg).rows / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folder", type=Path, help="the images the test set copies")
    p.add_argument("--workers", default="0,auto", help="comma-separated loader process counts, or 'auto'")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--images", type=int, default=1024)
    p.add_argument("--model", default="tf_efficientnet_lite0")
    p.add_argument("--img-size", type=int, default=224)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--results", default=str(Path(__file__).parent / "results" / "predict_loader.csv"))
    args = p.parse_args()
    configs = args.workers.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ["ARTKIT_CACHE_DIR"] = str(tmp / "cache")
        ckpt = checkpoint(args.model, args.img_size, tmp)
        data = copies(args.folder, args.images, tmp / "test_set")
        predict_rate(ckpt, data, 0, args.batch, tmp / "cache")  # the first predict of a process imports and warms up

        def fused() -> float:
            return bare_images_per_s(args.model, args.img_size, args.batch, torch.device("cpu"), "off", False, 20, True)

        for round_ in range(args.rounds):
            for config in configs:
                before = fused()
                workers = None if config == "auto" else int(config)
                rate = predict_rate(ckpt, data, workers, args.batch, tmp / "cache")
                forward = (before + fused()) / 2
                append_row(
                    args.results,
                    invocation(),
                    round=round_,
                    workers=config,
                    folder=f"{args.folder.parent.name}/{args.folder.name}",
                    images=args.images,
                    model=args.model,
                    img_size=args.img_size,
                    batch=args.batch,
                    predict_ips=round(rate, 1),
                    fused_forward_ips=round(forward, 1),
                    ratio=round(rate / forward, 3),
                )
                print(f"round {round_} workers {config}: {rate:.1f} images/s = {rate / forward:.3f}x", flush=True)


if __name__ == "__main__":
    main()
