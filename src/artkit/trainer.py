"""``artkit train`` as a plain function: a TrainConfig in, a run directory and a TrainResult out."""

from __future__ import annotations

import os
import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from artkit.checkpoint import load_checkpoint, make_checkpoint, save_atomic
from artkit.config import TrainConfig, config_from_mapping, load_yaml, save_yaml
from artkit.data.dataset import ImageTable
from artkit.data.images import check_image_header, load_image
from artkit.data.layout import Columns, class_names, discover
from artkit.data.sampler import SAMPLERS, EpochSampler, sample_weights, seed_everything
from artkit.data.splits import make_split
from artkit.engine import (oom_error, peak_lr, predict_logits, resolve_amp, resolve_device, train_one_epoch,
                           use_channels_last)
from artkit.errors import ArtkitError, ImageLoadError
from artkit.losses import create_loss
from artkit.metrics import confusion, summary_metrics
from artkit.models import create_model, load_weights, model_data_config, set_backbone_frozen
from artkit.reporting import Reporter
from artkit.runs import append_result, new_run_dir, read_json, read_results, write_json, write_results

MONITORS = {"val_macro_f1": "max", "val_acc": "max", "val_loss": "min"}
OPTIMIZERS = ("adamw", "sgd", "adam")
SCHEDULERS = ("cosine", "step", "none")
# options that may change when a run is resumed; everything else must stay as the run began
RESUMABLE = {"epochs", "patience", "workers", "device", "resume"}


@dataclass
class TrainResult:
    run_dir: Path
    best_path: Path | None = None
    last_path: Path | None = None
    best_epoch: int | None = None
    best_metrics: dict[str, float] = field(default_factory=dict)
    epochs_run: int = 0
    stopped_early: bool = False
    skipped_bad: list[str] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    folds: list[TrainResult] = field(default_factory=list)
    cv: dict[str, Any] | None = None


def default_workers() -> int:
    return min(8, os.cpu_count() or 1)


def validate_config(cfg: TrainConfig) -> None:
    checks = [
        (cfg.epochs >= 1, f"--epochs must be at least 1 (got {cfg.epochs})"),
        (cfg.batch_size >= 1, f"--batch-size must be at least 1 (got {cfg.batch_size})"),
        (cfg.grad_accum >= 1, f"--grad-accum must be at least 1 (got {cfg.grad_accum})"),
        (cfg.lr > 0, f"--lr must be positive (got {cfg.lr})"),
        (cfg.optimizer in OPTIMIZERS, f"unknown --optimizer '{cfg.optimizer}' (choose {', '.join(OPTIMIZERS)})"),
        (cfg.scheduler in SCHEDULERS, f"unknown --scheduler '{cfg.scheduler}' (choose {', '.join(SCHEDULERS)})"),
        (cfg.sampler in SAMPLERS, f"unknown --sampler '{cfg.sampler}' (choose {', '.join(SAMPLERS)})"),
        (cfg.monitor in MONITORS, f"unknown --monitor '{cfg.monitor}' (choose {', '.join(MONITORS)})"),
        (cfg.fold is None or cfg.folds is not None, "--fold needs --folds K"),
        (cfg.mixup >= 0 and cfg.cutmix >= 0, "--mixup and --cutmix are Beta-distribution alphas, >= 0"),
        (0.0 < cfg.ema_decay < 1.0, f"--ema-decay must be between 0 and 1 (got {cfg.ema_decay})"),
        (cfg.layer_decay is None or 0.0 < cfg.layer_decay <= 1.0,
         f"--layer-decay must be in (0, 1] (got {cfg.layer_decay})"),
        (0 <= cfg.freeze_epochs < cfg.epochs,
         f"--freeze-epochs must be at least 0 and fewer than --epochs (got {cfg.freeze_epochs} of {cfg.epochs})"),
    ]
    for ok, message in checks:
        if not ok:
            raise ArtkitError(message)
    from artkit.transforms import get_preset

    get_preset(cfg.aug)


# --------------------------------------------------------------------------- data


def _decode_check(path: str) -> str | None:
    try:
        load_image(path, min_size=32)  # a reduced-size decode still reads the whole file
        return None
    except ImageLoadError as exc:
        return exc.message


def find_unreadable(paths: list[str], workers: int, decode: bool = False) -> dict[str, str]:
    """Path -> reason for every image that cannot be read. Headers only by default (missing, empty,
    not an image); ``decode`` also finds truncated files, at the cost of decoding every image."""
    check = _decode_check if decode else check_image_header
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:  # Pillow decodes without the GIL
        reasons = list(pool.map(check, paths))
    return {p: r for p, r in zip(paths, reasons) if r is not None}


def _make_loader(dataset, batch_size: int, workers: int, sampler=None, drop_last: bool = False, pin: bool = False):
    from torch.utils.data import DataLoader

    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers, drop_last=drop_last,
                      pin_memory=pin, persistent_workers=workers > 0)


# --------------------------------------------------------------------------- optimisation


def build_optimizer(cfg: TrainConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    from timm.optim import create_optimizer_v2

    if cfg.layer_decay is not None and not hasattr(model, "group_matcher"):
        raise ArtkitError(f"--layer-decay: timm cannot group the layers of '{cfg.model}'", "leave --layer-decay out")
    # timm's "sgd" is Nesterov momentum; "momentum" is plain heavy-ball. Both skip weight decay on norms and biases.
    # layer_decay gives each layer group an "lr_scale", which timm's schedulers apply at every update.
    return create_optimizer_v2(model, opt=cfg.optimizer, lr=cfg.lr, weight_decay=cfg.weight_decay,
                               momentum=cfg.momentum, layer_decay=cfg.layer_decay)


def build_scheduler(cfg: TrainConfig, optimizer, updates_per_epoch: int):
    """A timm scheduler stepped once per optimiser update; it is a pure function of the update count,
    so a resumed (or extended) run only needs that count."""
    from timm.scheduler import CosineLRScheduler, StepLRScheduler

    total = max(1, cfg.epochs * updates_per_epoch)
    warmup = min(int(cfg.warmup_epochs * updates_per_epoch), total // 2)
    common = dict(warmup_t=warmup, warmup_lr_init=cfg.lr * 0.01, t_in_epochs=False)
    if cfg.scheduler == "cosine":
        return CosineLRScheduler(optimizer, t_initial=total, lr_min=cfg.min_lr, **common)
    if cfg.scheduler == "step":
        step_epochs = cfg.step_epochs or max(1, cfg.epochs // 3)
        return StepLRScheduler(optimizer, decay_t=step_epochs * updates_per_epoch, decay_rate=cfg.step_gamma, **common)
    return None


def _rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    return {"torch": torch.get_rng_state(), "python": random.getstate(),
            "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                      "has_gauss": int(np_state[3]), "gauss": float(np_state[4])}}


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(_to_tuple(state["python"]))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))


def _to_tuple(x):
    return tuple(_to_tuple(v) for v in x) if isinstance(x, (list, tuple)) else x


# --------------------------------------------------------------------------- one run


def _better(score: float, best: float | None, mode: str) -> bool:
    if not np.isfinite(score):
        return False
    return best is None or (score > best if mode == "max" else score < best)


def _load_split(run_dir: Path) -> pd.DataFrame:
    path = run_dir / "split.csv"
    if not path.exists():
        raise ArtkitError(f"{path} is missing, so the run's split cannot be restored", "start a new run")
    return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")


def fit(cfg: TrainConfig, run_dir: Path, reporter: Reporter, resuming: bool = False) -> TrainResult:
    """Train one model (one holdout split, one fold, or all rows with ``full``) into ``run_dir``."""
    validate_config(cfg)
    device = resolve_device(cfg.device)
    amp_dtype = resolve_amp(cfg.amp, device)
    workers = default_workers() if cfg.workers is None else cfg.workers
    seed_everything(cfg.seed)

    if resuming:
        split = _load_split(run_dir)
        last = load_checkpoint(run_dir / "last.pt")
        classes = list(last["classes"])
    else:
        source = discover(cfg.data, cfg.train_csv, None, Columns(cfg.id_col, cfg.image_col, cfg.label_col))
        table = source.require_train()
        if table["id"].duplicated().any():
            dups = table.loc[table["id"].duplicated(), "id"].unique()[:5]
            raise ArtkitError(f"duplicate ids in the training data: {', '.join(dups)}",
                              "run `artkit clean` and train on its train_clean.csv (--train-csv)")
        if cfg.full:
            split = table[["id", "path", "label"]].copy()
            split["split"] = "train"
        else:
            split = make_split(table, cfg.seed, cfg.val_fraction, cfg.folds, cfg.fold)
        split.to_csv(run_dir / "split.csv", index=False, encoding="utf-8")
        classes = class_names(table["label"])
        save_yaml(cfg.to_dict(), run_dir / "config.yaml")
    if len(classes) < 2:
        raise ArtkitError(f"need at least two classes to train, found {len(classes)}")

    # with --skip-bad, decode everything up front so truncated files are left out and counted too
    bad = find_unreadable(split["path"].tolist(), workers, decode=cfg.skip_bad)
    if bad and not cfg.skip_bad:
        first = "; ".join(f"{p} ({r})" for p, r in list(bad.items())[:3])
        raise ArtkitError(f"{len(bad)} training image(s) cannot be read: {first}",
                          "pass --skip-bad to train without them, or run `artkit clean`")
    usable = split[~split["path"].isin(bad)]
    index = {c: i for i, c in enumerate(classes)}
    train_rows = usable[usable["split"] == "train"]
    val_rows = usable[usable["split"] == "val"]
    has_val = len(val_rows) > 0
    y_train = np.array(train_rows["label"].map(index), dtype=np.int64)
    y_val = np.array(val_rows["label"].map(index), dtype=np.int64)
    counts = np.bincount(y_train, minlength=len(classes))

    # model
    pretrained = cfg.pretrained and not cfg.weights and not resuming
    model = create_model(cfg.model, len(classes), pretrained, cfg.drop_rate, cfg.drop_path_rate)
    if cfg.weights and not resuming:
        report = load_weights(model, cfg.weights)
        reporter.message(f"initialised {report.loaded} tensors from {cfg.weights}"
                         + (f"; re-initialised {len(report.skipped)} of another shape ({', '.join(report.skipped[:4])})"
                            if report.skipped else ""))
    dcfg = model_data_config(model, cfg.img_size)
    channels_last = use_channels_last(device)
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)

    # data
    from artkit.transforms import create_transform, get_preset

    decode = int(dcfg.img_size * get_preset(cfg.aug).decode_factor)
    train_ds = ImageTable(train_rows["path"].tolist(), y_train,
                          create_transform(cfg.aug, dcfg.img_size, dcfg.mean, dcfg.std, "train"), decode, cfg.skip_bad)
    val_ds = ImageTable(val_rows["path"].tolist(), y_val,
                        create_transform(cfg.aug, dcfg.img_size, dcfg.mean, dcfg.std, "val"), decode, cfg.skip_bad)
    mixup = None
    if cfg.mixup > 0 or cfg.cutmix > 0:
        from timm.data import Mixup

        mixup = Mixup(mixup_alpha=cfg.mixup, cutmix_alpha=cfg.cutmix, label_smoothing=cfg.label_smoothing,
                      num_classes=len(classes))
    sampler = EpochSampler(len(train_ds), cfg.seed, weights=sample_weights(y_train, cfg.sampler))
    pin = device.type == "cuda"
    drop_last = mixup is not None and len(train_ds) > cfg.batch_size  # timm's Mixup needs even batches
    train_loader = _make_loader(train_ds, cfg.batch_size, workers, sampler, drop_last, pin)
    val_loader = _make_loader(val_ds, cfg.batch_size * 2, workers, pin=pin) if has_val else None

    criterion = create_loss(cfg.loss, counts, cfg.class_weights, cfg.label_smoothing, cfg.focal_gamma).to(device)
    optimizer = build_optimizer(cfg, model)
    updates_per_epoch = -(-len(train_loader) // cfg.grad_accum)
    scheduler = build_scheduler(cfg, optimizer, updates_per_epoch)
    scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 and device.type == "cuda" else None
    ema = None
    if cfg.ema:
        from timm.utils import ModelEmaV3

        ema = ModelEmaV3(model, decay=cfg.ema_decay)

    mode = MONITORS[cfg.monitor]
    start_epoch, num_updates, best, best_epoch, bad_epochs = 0, 0, None, None, 0
    rows: list[dict[str, Any]] = []
    if resuming:
        state = last["train_state"]
        model.load_state_dict(state.get("model") or last["state_dict"])
        optimizer.load_state_dict(state["optimizer"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        if ema is not None:
            ema.module.load_state_dict(last["state_dict"])
        start_epoch, num_updates = int(last["epoch"]), int(state["num_updates"])
        best, best_epoch, bad_epochs = state["best_score"], state["best_epoch"], int(state["bad_epochs"])
        _set_rng_state(state["rng"])
        rows = read_results(run_dir / "results.csv")[:start_epoch]
        write_results(run_dir / "results.csv", rows)  # drop rows of an epoch that never reached last.pt
        if scheduler is not None:
            scheduler.step_update(num_updates)

    reporter.start({"run_dir": str(run_dir), "model": cfg.model, "classes": len(classes), "train": len(train_ds),
                    "val": len(val_ds), "device": str(device), "amp": str(amp_dtype).replace("torch.", "") if amp_dtype else "off",
                    "img_size": dcfg.img_size, "skipped_bad": len(bad), "start_epoch": start_epoch,
                    "epochs": cfg.epochs, "init": _init_description(cfg, pretrained, resuming)})
    def eval_model() -> torch.nn.Module:  # EMA weights are what gets validated and saved
        return model if ema is None else ema.module

    best_val: tuple[np.ndarray, np.ndarray] | None = None
    stopped_early = False
    last_path, best_path = run_dir / "last.pt", run_dir / "best.pt"
    meta = dict(model_name=cfg.model, classes=classes, img_size=dcfg.img_size, mean=dcfg.mean, std=dcfg.std,
                config=cfg.to_dict())

    for epoch in range(start_epoch, cfg.epochs):
        seed_everything(cfg.seed + epoch)  # dropout and Mixup draws depend only on (seed, epoch)
        sampler.set_epoch(epoch)
        frozen = epoch < cfg.freeze_epochs
        if cfg.freeze_epochs:
            set_backbone_frozen(model, frozen)
        reporter.epoch_start(epoch + 1, cfg.epochs, len(train_loader))
        try:
            stats = train_one_epoch(model, train_loader, criterion, optimizer, scheduler, device, amp_dtype, scaler,
                                    num_updates, cfg.grad_accum, cfg.clip_grad, ema, mixup, channels_last,
                                    reporter.step, backbone_frozen=frozen)
        except torch.cuda.OutOfMemoryError:
            raise oom_error(cfg.batch_size) from None
        num_updates = stats.num_updates
        row: dict[str, Any] = {"epoch": epoch + 1, "lr": peak_lr(optimizer), "train_loss": stats.loss, "val_loss": float("nan"),
                               "val_acc": float("nan"), "val_macro_f1": float("nan"), "seconds": stats.seconds,
                               "images_per_s": stats.images_per_s}
        val_logits = None
        if has_val:
            val_logits, _ = predict_logits(eval_model(), val_loader, device, amp_dtype, channels_last=channels_last,
                                           on_step=lambda done, total: reporter.progress("validate", done, total))
            with torch.no_grad():
                row["val_loss"] = float(criterion(torch.from_numpy(val_logits).to(device),
                                                  torch.from_numpy(y_val).to(device)))
            m = summary_metrics(y_val, val_logits.argmax(1))
            row["val_acc"], row["val_macro_f1"] = m["acc"], m["macro_f1"]
            improved = _better(row[cfg.monitor], best, mode)
        else:
            improved = True
        if improved:
            best, best_epoch, bad_epochs = (row[cfg.monitor] if has_val else None), epoch + 1, 0
            if val_logits is not None:
                best_val = (val_logits, y_val)
        else:
            bad_epochs += 1
        rows.append(row)
        append_result(run_dir / "results.csv", row)
        weights = eval_model().state_dict()
        metrics = {k: v for k, v in row.items() if k != "epoch"}
        train_state = {"optimizer": optimizer.state_dict(), "scaler": scaler.state_dict() if scaler else None,
                       "num_updates": num_updates, "best_score": best, "best_epoch": best_epoch,
                       "bad_epochs": bad_epochs, "rng": _rng_state(),
                       "model": model.state_dict() if ema is not None else None}
        if improved:
            save_atomic(make_checkpoint(state_dict=weights, metrics=metrics, epoch=epoch + 1, **meta), best_path)
            if best_val is not None:
                _save_val_predictions(run_dir, val_rows["id"].tolist(), classes, *best_val)
        save_atomic(make_checkpoint(state_dict=weights, metrics=metrics, epoch=epoch + 1, train_state=train_state,
                                    **meta), last_path)
        reporter.epoch_end(row, improved)
        if has_val and cfg.patience and bad_epochs >= cfg.patience:
            stopped_early = True
            reporter.message(f"early stop: {cfg.monitor} has not improved for {cfg.patience} epochs")
            break

    return _finish_run(run_dir, rows, classes, best_epoch, stopped_early, sorted(bad), best_path, last_path)


def _init_description(cfg: TrainConfig, pretrained: bool, resuming: bool) -> str:
    if resuming:
        return "resumed from last.pt"
    if cfg.weights:
        return f"weights from {cfg.weights}"
    return "timm pretrained weights" if pretrained else "random init"


def _save_val_predictions(run_dir: Path, ids: list[str], classes: list[str], logits: np.ndarray, y: np.ndarray) -> None:
    path = run_dir / "val_predictions.npz"
    with open(path.with_suffix(".tmp"), "wb") as fh:
        np.savez(fh, ids=np.array(ids, dtype=str), classes=np.array(classes, dtype=str), logits=logits,
                 targets=y.astype(np.int64))
    path.with_suffix(".tmp").replace(path)


def _finish_run(run_dir: Path, rows: list[dict], classes: list[str], best_epoch: int | None, stopped_early: bool,
                bad: list[str], best_path: Path, last_path: Path) -> TrainResult:
    from artkit.plots import plot_confusion, plot_curves

    best_row = next((r for r in rows if r["epoch"] == best_epoch), rows[-1] if rows else {})
    if rows:
        plot_curves(rows, run_dir / "curves.png")
    val_path = run_dir / "val_predictions.npz"
    if val_path.exists():
        with np.load(val_path, allow_pickle=False) as z:
            cm = confusion(z["targets"], z["logits"].argmax(1), len(classes))
        plot_confusion(cm, classes, run_dir / "confusion_matrix.png")
    best_metrics = {k: v for k, v in best_row.items() if k.startswith("val_") and np.isfinite(v)}
    write_json(run_dir / "summary.json", {"finished": True, "best_epoch": best_epoch, "best_metrics": best_metrics,
                                          "epochs_run": len(rows), "stopped_early": stopped_early,
                                          "skipped_bad": bad})
    return TrainResult(run_dir, best_path, last_path, best_epoch, best_metrics, len(rows), stopped_early, bad, rows)


# --------------------------------------------------------------------------- entry points


def _resume_config(run_dir: Path, overrides: TrainConfig, explicit: set[str]) -> TrainConfig:
    saved = config_from_mapping(load_yaml(run_dir / "config.yaml"), source=str(run_dir / "config.yaml"))
    changed = {k for k in explicit if k not in RESUMABLE and getattr(overrides, k) != getattr(saved, k)}
    if changed:
        raise ArtkitError(f"--resume continues a run as it began; these options differ: {', '.join(sorted(changed))}",
                          "only --epochs, --patience, --workers and --device may change; start a new run otherwise")
    return replace(saved, **{k: getattr(overrides, k) for k in explicit & RESUMABLE if k != "resume"}, resume=None)


def _run_finished(run_dir: Path, epochs: int) -> bool:
    summary = run_dir / "summary.json"
    if not summary.exists():
        return False
    s = read_json(summary)
    return bool(s.get("finished")) and (s.get("stopped_early") or s.get("epochs_run", 0) >= epochs)


def train(cfg: TrainConfig, reporter: Reporter | None = None, explicit: set[str] | None = None) -> TrainResult:
    """Run ``artkit train``: a new run, one or all k-fold runs, or a resumed run (``cfg.resume``).

    ``explicit`` names the options the user set (so resuming can check nothing else changed).
    """
    reporter = reporter or Reporter()
    if cfg.resume:
        run_dir = Path(cfg.resume)
        if not (run_dir / "config.yaml").exists():
            raise ArtkitError(f"{run_dir} is not an artkit run directory (no config.yaml)",
                              "pass the run folder, e.g. --resume runs/train2")
        cfg = _resume_config(run_dir, cfg, explicit if explicit is not None else set())
        if cfg.folds and cfg.fold is None and not cfg.full:
            from artkit.kfold import train_all_folds

            return train_all_folds(cfg, run_dir, reporter, resuming=True)
        if not (run_dir / "last.pt").exists():
            raise ArtkitError(f"{run_dir} has no last.pt: it never finished an epoch", "start a new run instead")
        if _run_finished(run_dir, cfg.epochs):
            raise ArtkitError(f"{run_dir} already finished {cfg.epochs} epochs", "pass a larger --epochs to continue")
        save_yaml(cfg.to_dict(), run_dir / "config.yaml")
        (run_dir / "summary.json").unlink(missing_ok=True)
        return fit(cfg, run_dir, reporter, resuming=True)

    validate_config(cfg)
    if cfg.folds and not cfg.full:
        from artkit.kfold import kfold_parent_dir, train_all_folds

        parent = kfold_parent_dir(cfg)
        if cfg.fold is None:
            return train_all_folds(cfg, parent, reporter)
        fold_dir = parent / f"fold{cfg.fold}"
        fold_dir.mkdir()
        return fit(cfg, fold_dir, reporter)
    return fit(cfg, new_run_dir(cfg.out, cfg.name), reporter)
