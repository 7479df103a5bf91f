"""The demo pipeline: make the synthetic dataset, train, evaluate, predict, score — all offline."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from artkit.options import option
from artkit.progress import Reporter
from artkit.system import torch_build_note


@dataclass(kw_only=True)
class DemoConfig:
    out: str = option("demo", "Folder for the demo data, run and submission.")
    model: str = option("resnet10t", "timm model (trained from scratch, no download).", short="-m")
    img_size: int = option(64, "Input size in pixels.", min=8)
    epochs: int = option(6, "Training epochs.", short="-e", min=1)
    workers: int | None = option(
        None, "Data-loading processes (default: one per CPU core, at most 8).", short="-w", min=0
    )
    seed: int = option(0, "Seed of the synthetic data and the run.")


@dataclass(kw_only=True)
class DemoResult:
    data_dir: Path
    run_dir: Path
    eval_dir: Path
    submission: Path
    logits: Path
    val_macro_f1: float
    test_macro_f1: float
    note: str | None = None  # about this machine's torch build (artkit.system.torch_build_note)


MARKER = ".artkit-demo"  # marks a folder artkit demo made, so a later demo may write into it again


def claim_demo_folder(out: Path) -> Path:
    """``out`` for the demo: new, empty, or an earlier demo's; never a folder of the user's files."""
    from artkit.errors import ArtkitError
    from artkit.writer import ensure_dir, write_text

    if out.exists() and not out.is_dir():
        raise ArtkitError(f"--out {out} is a file", "choose a folder for the demo, e.g. --out demo")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise ArtkitError(
            f"{out} already holds files that artkit demo did not write; the demo would overwrite them",
            "choose a new or empty folder, e.g. --out demo",
        )
    ensure_dir(out)
    write_text(out / MARKER, "This folder was written by `artkit demo`; a later demo may overwrite it.\n")
    return out


def run_demo(cfg: DemoConfig, reporter: Reporter | None = None) -> DemoResult:
    from artkit.data.synthetic import make_demo_dataset
    from artkit.engine.config import TrainConfig
    from artkit.engine.train_command import train
    from artkit.inference.config import EvalConfig, PredictConfig
    from artkit.inference.evaluate import run_eval
    from artkit.inference.predict import run_predict
    from artkit.metrics import summary_metrics
    from artkit.reader import read_csv_text

    out = claim_demo_folder(Path(cfg.out))
    data_dir = make_demo_dataset(out / "data", seed=cfg.seed)
    train_cfg = TrainConfig(
        data=str(data_dir),
        model=cfg.model,
        pretrained=False,
        img_size=cfg.img_size,
        epochs=cfg.epochs,
        batch_size=16,
        lr=2e-3,
        warmup_epochs=0.5,
        aug="crop",
        sampler="sqrt",
        workers=cfg.workers,
        seed=cfg.seed,
        out=str(out / "runs"),
        name="demo",
    )
    result = train(train_cfg, reporter)
    inference = dict(batch_size=64, workers=cfg.workers, tta="hflip")
    ev = run_eval(EvalConfig(checkpoint=str(result.best_path), **inference), reporter)
    pred = run_predict(
        PredictConfig(
            checkpoint=str(result.best_path), data=str(data_dir), out=str(out / "submission.csv"), **inference
        ),
        reporter,
    )
    truth = read_csv_text(data_dir / "test_labels.csv")
    sub = read_csv_text(pred.submission)
    classes = sorted(set(truth["artist"]))
    index = {c: i for i, c in enumerate(classes)}
    test_f1 = summary_metrics(truth["artist"].map(index).to_numpy(), sub["artist"].map(index).to_numpy())["macro_f1"]
    return DemoResult(
        data_dir=data_dir,
        run_dir=result.run_dir,
        eval_dir=ev.out_dir,
        submission=pred.submission,
        logits=pred.logits,
        val_macro_f1=ev.metrics["macro_f1"],
        test_macro_f1=test_f1,
        note=torch_build_note(),
    )
