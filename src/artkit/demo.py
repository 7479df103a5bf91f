"""The demo pipeline: make the synthetic dataset, train, evaluate, predict, score — all offline."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from artkit.config import TrainConfig
from artkit.data.demo import make_demo_dataset
from artkit.inference import EvalConfig, InferenceOptions, PredictConfig, run_eval, run_predict
from artkit.metrics import summary_metrics
from artkit.reporting import Reporter
from artkit.trainer import train


@dataclass
class DemoConfig:
    out: str = "demo"
    model: str = "resnet10t"
    img_size: int = 64
    epochs: int = 6
    workers: int | None = None
    seed: int = 0


@dataclass
class DemoResult:
    data_dir: Path
    run_dir: Path
    eval_dir: Path
    submission: Path
    logits: Path
    val_macro_f1: float
    test_macro_f1: float


def run_demo(cfg: DemoConfig, reporter: Reporter | None = None) -> DemoResult:
    out = Path(cfg.out)
    data_dir = make_demo_dataset(out / "data", seed=cfg.seed)
    train_cfg = TrainConfig(data=str(data_dir), model=cfg.model, pretrained=False, img_size=cfg.img_size,
                            epochs=cfg.epochs, batch_size=16, lr=2e-3, warmup_epochs=0.5, aug="crop",
                            sampler="sqrt", workers=cfg.workers, seed=cfg.seed, out=str(out / "runs"), name="demo")
    result = train(train_cfg, reporter)
    opts = InferenceOptions(batch_size=64, workers=cfg.workers, tta="hflip")
    ev = run_eval(EvalConfig(str(result.best_path), options=opts), reporter)
    pred = run_predict(PredictConfig(str(result.best_path), data=str(data_dir), out=str(out / "submission.csv"),
                                     options=opts), reporter)
    truth = pd.read_csv(data_dir / "test_labels.csv", dtype=str, keep_default_na=False)
    sub = pd.read_csv(pred.submission, dtype=str, keep_default_na=False)
    classes = sorted(set(truth["artist"]))
    index = {c: i for i, c in enumerate(classes)}
    test_f1 = summary_metrics(truth["artist"].map(index).to_numpy(), sub["artist"].map(index).to_numpy())["macro_f1"]
    return DemoResult(data_dir, result.run_dir, ev.out_dir, pred.submission, pred.logits,
                      ev.metrics["macro_f1"], test_f1)
