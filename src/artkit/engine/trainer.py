"""``artkit train`` as a plain function: a TrainConfig in, a run directory and a TrainResult out.

:func:`fit` reads as a list of steps: prepare the data, build the model and what trains it, then an epoch
loop (train, validate, record, save) whose bookkeeping lives in :class:`EarlyStopping`,
:class:`CheckpointSaver` and :class:`ResumeState`.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from artkit.configs import check_config, load_config, options, save_config, to_dict
from artkit.data.dataset import ImageTable
from artkit.data.images import check_image_header, load_image
from artkit.data.layout import class_names, discover
from artkit.data.sampler import EpochSampler, sample_weights, seed_everything
from artkit.data.splits import make_split
from artkit.data.transforms import create_transform, get_preset
from artkit.engine.checkpoint import CheckpointSaver, ModelMeta, load_checkpoint
from artkit.engine.config import MONITORS, TrainConfig, check_train_config
from artkit.engine.device import Runtime, oom_error
from artkit.engine.loop import TrainParts, predict_logits, train_one_epoch
from artkit.engine.optim import build_optimizer, build_scheduler, peak_lr
from artkit.engine.resume import ResumeState, rng_state, set_rng_state
from artkit.engine.runs import read_results, remove_run_dir, run_finished, write_results, write_summary
from artkit.engine.stopping import EarlyStopping
from artkit.errors import ArtkitError, ImageLoadError
from artkit.io import read_csv_text, remove_stale_temp_files, save_npz, write_csv
from artkit.metrics import confusion, summary_metrics
from artkit.models.factory import DataConfig, create_model, model_data_config, set_backbone_frozen
from artkit.models.losses import create_loss
from artkit.models.weights import load_weights
from artkit.reporting import Reporter
from artkit.system import default_workers

RESUMABLE = {info.name for info in options(TrainConfig) if info.spec.resumable}


@dataclass(kw_only=True)
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


def validate_config(cfg: TrainConfig) -> None:
    check_config(cfg)
    check_train_config(cfg)


# --------------------------------------------------------------------------- data


@dataclass(kw_only=True)
class RunData:
    """The rows a run trains and validates on, as class indices."""

    classes: list[str]
    train_rows: pd.DataFrame
    val_rows: pd.DataFrame
    bad: dict[str, str]  # unreadable path -> reason (left out with --skip-bad)

    def targets(self, rows: pd.DataFrame) -> np.ndarray:
        index = {c: i for i, c in enumerate(self.classes)}
        return np.array(rows["label"].map(index), dtype=np.int64)

    @property
    def has_val(self) -> bool:
        return len(self.val_rows) > 0


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


def _new_split(cfg: TrainConfig, run_dir: Path) -> tuple[pd.DataFrame, list[str]]:
    """Find the training table, split it, and record split.csv and config.yaml in the run folder."""
    source = discover(cfg.data, cfg.train_csv, None, cfg.columns)
    table = source.require_train()
    if table["id"].duplicated().any():
        dups = table.loc[table["id"].duplicated(), "id"].unique()[:5]
        raise ArtkitError(
            f"duplicate ids in the training data: {', '.join(dups)}",
            "run `artkit clean` and train on its train_clean.csv (--train-csv)",
        )
    if cfg.full:
        split = table[["id", "path", "label"]].copy()
        split["split"] = "train"
    else:
        split = make_split(table, cfg.seed, cfg.val_fraction, cfg.folds, cfg.fold)
    write_csv(run_dir / "split.csv", split)
    save_config(cfg, run_dir / "config.yaml", header="artkit train options of this run")
    return split, class_names(table["label"])


def _saved_split(run_dir: Path) -> pd.DataFrame:
    path = run_dir / "split.csv"
    if not path.exists():
        raise ArtkitError(f"{path} is missing, so the run's split cannot be restored", "start a new run")
    return read_csv_text(path)


def prepare_data(cfg: TrainConfig, run_dir: Path, last: dict | None, workers: int) -> RunData:
    """The split (new, or the run's own when resuming from ``last``), without unreadable images."""
    if last is not None:
        split, classes = _saved_split(run_dir), list(last["classes"])
    else:
        split, classes = _new_split(cfg, run_dir)
    if len(classes) < 2:
        raise ArtkitError(f"need at least two classes to train, found {len(classes)}")
    # with --skip-bad, decode everything up front so truncated files are left out and counted too
    bad = find_unreadable(split["path"].tolist(), workers, decode=cfg.skip_bad)
    if bad and not cfg.skip_bad:
        first = "; ".join(f"{p} ({r})" for p, r in list(bad.items())[:3])
        raise ArtkitError(
            f"{len(bad)} training image(s) cannot be read: {first}",
            "pass --skip-bad to train without them, or run `artkit clean`",
        )
    usable = split[~split["path"].isin(bad)]
    return RunData(
        classes=classes,
        train_rows=usable[usable["split"] == "train"],
        val_rows=usable[usable["split"] == "val"],
        bad=bad,
    )


@dataclass(kw_only=True)
class Loaders:
    train: Any
    val: Any
    sampler: EpochSampler
    train_size: int
    val_size: int


def _loader(dataset, batch_size: int, workers: int, rt: Runtime, sampler=None, drop_last: bool = False):
    from torch.utils.data import DataLoader

    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        drop_last=drop_last,
        pin_memory=rt.pin_memory,
        persistent_workers=workers > 0,
    )


def build_loaders(cfg: TrainConfig, data: RunData, dcfg: DataConfig, workers: int, rt: Runtime) -> Loaders:
    decode = int(dcfg.img_size * get_preset(cfg.aug).decode_factor)

    def dataset(rows: pd.DataFrame, stage: str) -> ImageTable:
        transform = create_transform(cfg.aug, dcfg.img_size, dcfg.mean, dcfg.std, stage)
        return ImageTable(rows["path"].tolist(), data.targets(rows), transform, decode, cfg.skip_bad)

    train_ds, val_ds = dataset(data.train_rows, "train"), dataset(data.val_rows, "val")
    y_train = data.targets(data.train_rows)
    sampler = EpochSampler(len(train_ds), cfg.seed, weights=sample_weights(y_train, cfg.sampler))
    mixing = cfg.mixup > 0 or cfg.cutmix > 0
    drop_last = mixing and len(train_ds) > cfg.batch_size  # timm's Mixup needs even batches
    return Loaders(
        train=_loader(train_ds, cfg.batch_size, workers, rt, sampler, drop_last),
        val=_loader(val_ds, cfg.batch_size * 2, workers, rt) if data.has_val else None,
        sampler=sampler,
        train_size=len(train_ds),
        val_size=len(val_ds),
    )


# --------------------------------------------------------------------------- model and optimisation


def build_model(cfg: TrainConfig, n_classes: int, resuming: bool, reporter: Reporter) -> tuple[torch.nn.Module, str]:
    """The timm model and how it was initialised (pretrained, weights file, random, resumed)."""
    pretrained = cfg.pretrained and not cfg.weights and not resuming
    model = create_model(cfg.model, n_classes, pretrained, cfg.drop_rate, cfg.drop_path_rate)
    if resuming:
        return model, "resumed from last.pt"
    if cfg.weights:
        report = load_weights(model, cfg.weights)
        reporter.message(
            f"initialised {report.loaded} tensors from {cfg.weights}"
            + (
                f"; re-initialised {len(report.skipped)} of another shape ({', '.join(report.skipped[:4])})"
                if report.skipped
                else ""
            )
        )
        return model, f"weights from {cfg.weights}"
    return model, "timm pretrained weights" if pretrained else "random init"


def build_parts(
    cfg: TrainConfig,
    model: torch.nn.Module,
    data: RunData,
    rt: Runtime,
    steps_per_epoch: int,
    epochs: int | None = None,
) -> TrainParts:
    counts = np.bincount(data.targets(data.train_rows), minlength=len(data.classes))
    mixup = None
    if cfg.mixup > 0 or cfg.cutmix > 0:
        from timm.data import Mixup

        mixup = Mixup(
            mixup_alpha=cfg.mixup,
            cutmix_alpha=cfg.cutmix,
            label_smoothing=cfg.label_smoothing,
            num_classes=len(data.classes),
        )
    optimizer = build_optimizer(cfg, model)
    updates_per_epoch = -(-steps_per_epoch // cfg.grad_accum)
    ema = None
    if cfg.ema:
        from timm.utils import ModelEmaV3

        ema = ModelEmaV3(model, decay=cfg.ema_decay)
    return TrainParts(
        model=model,
        optimizer=optimizer,
        mixup=mixup,
        ema=ema,
        scaler=rt.grad_scaler(),
        criterion=create_loss(cfg.loss, counts, cfg.class_weights, cfg.label_smoothing, cfg.focal_gamma, rt.device),
        scheduler=build_scheduler(cfg, optimizer, updates_per_epoch, epochs),
        grad_accum=cfg.grad_accum,
        clip_grad=cfg.clip_grad,
    )


def restore(last: dict, parts: TrainParts, stopper: EarlyStopping) -> ResumeState:
    """Load the optimiser, scaler, EMA, early-stopping and RNG state saved in ``last.pt``."""
    state = ResumeState.from_checkpoint(last)
    parts.model.load_state_dict(state.model or last["state_dict"])
    parts.optimizer.load_state_dict(state.optimizer)
    if parts.scaler is not None and state.scaler:
        parts.scaler.load_state_dict(state.scaler)
    if parts.ema is not None:
        parts.ema.module.load_state_dict(last["state_dict"])
    stopper.load_state(state.stopping)
    set_rng_state(state.rng)
    if parts.scheduler is not None:
        parts.scheduler.step_update(state.num_updates)
    return state


# --------------------------------------------------------------------------- epochs


@dataclass(kw_only=True)
class Validation:
    metrics: dict[str, float]  # val_loss, val_acc, val_macro_f1
    logits: np.ndarray
    targets: np.ndarray
    finite: bool  # False: NaN/inf logits or loss; such an epoch is never best


def validate(
    model: torch.nn.Module, loader, targets: np.ndarray, criterion, rt: Runtime, reporter: Reporter
) -> Validation:
    logits, _ = predict_logits(
        model, loader, rt, on_step=lambda done, total: reporter.progress("validate", done, total)
    )
    with torch.no_grad():
        loss = float(criterion(torch.from_numpy(logits).to(rt.device), torch.from_numpy(targets).to(rt.device)))
    finite = bool(np.isfinite(logits).all()) and np.isfinite(loss)
    m = summary_metrics(targets, logits.argmax(1))
    metrics = {"val_loss": loss, "val_acc": m["acc"], "val_macro_f1": m["macro_f1"]}
    return Validation(metrics=metrics, logits=logits, targets=targets, finite=finite)


def train_epoch(
    epoch: int,
    cfg: TrainConfig,
    parts: TrainParts,
    loaders: Loaders,
    rt: Runtime,
    state: ResumeState,
    reporter: Reporter,
) -> dict[str, Any]:
    """Train one epoch; returns its results.csv row (validation columns still NaN)."""
    seed_everything(cfg.seed + epoch)  # dropout and Mixup draws depend only on (seed, epoch)
    loaders.sampler.set_epoch(epoch)
    frozen = epoch < cfg.freeze_epochs
    if cfg.freeze_epochs:
        set_backbone_frozen(parts.model, frozen)
    reporter.epoch_start(epoch + 1, cfg.epochs, len(loaders.train))
    try:
        stats = train_one_epoch(parts, loaders.train, rt, state.num_updates, reporter.step, backbone_frozen=frozen)
    except torch.cuda.OutOfMemoryError:
        raise oom_error(cfg.batch_size) from None
    state.num_updates = stats.num_updates
    nan = float("nan")
    return {
        "epoch": epoch + 1,
        "lr": peak_lr(parts.optimizer),
        "train_loss": stats.loss,
        "val_loss": nan,
        "val_acc": nan,
        "val_macro_f1": nan,
        "seconds": stats.seconds,
        "images_per_s": stats.images_per_s,
    }


def save_val_predictions(run_dir: Path, ids: list[str], classes: list[str], val: Validation) -> None:
    save_npz(
        run_dir / "val_predictions.npz",
        ids=np.array(ids, dtype=str),
        classes=np.array(classes, dtype=str),
        logits=val.logits,
        targets=val.targets.astype(np.int64),
    )


@dataclass(kw_only=True)
class Session:
    """Everything a run's epoch loop works with."""

    cfg: TrainConfig
    run_dir: Path
    rt: Runtime
    data: RunData
    loaders: Loaders
    parts: TrainParts
    stopper: EarlyStopping
    state: ResumeState
    saver: CheckpointSaver
    rows: list[dict[str, Any]]
    header: dict[str, Any]  # what the reporter shows when the run starts


def start_session(cfg: TrainConfig, run_dir: Path, reporter: Reporter, resuming: bool) -> Session:
    """Data, model, optimisation and (when resuming) the state saved in last.pt."""
    validate_config(cfg)
    rt = Runtime.create(cfg.device, cfg.amp)
    workers = default_workers() if cfg.workers is None else cfg.workers
    seed_everything(cfg.seed)
    last = load_checkpoint(run_dir / "last.pt") if resuming else None
    data = prepare_data(cfg, run_dir, last, workers)
    model, init = build_model(cfg, len(data.classes), resuming, reporter)
    dcfg = model_data_config(model, cfg.img_size)
    rt.prepare(model)
    loaders = build_loaders(cfg, data, dcfg, workers, rt)
    parts = build_parts(cfg, model, data, rt, len(loaders.train))
    stopper = EarlyStopping(mode=MONITORS[cfg.monitor], patience=cfg.patience)
    state = restore(last, parts, stopper) if last is not None else ResumeState()
    meta = ModelMeta(
        model_name=cfg.model,
        classes=data.classes,
        img_size=dcfg.img_size,
        mean=dcfg.mean,
        std=dcfg.std,
        config=to_dict(cfg),
    )
    header = {
        "run_dir": str(run_dir),
        "model": cfg.model,
        "classes": len(data.classes),
        "train": loaders.train_size,
        "val": loaders.val_size,
        "device": str(rt.device),
        "amp": rt.amp_name,
        "img_size": dcfg.img_size,
        "skipped_bad": len(data.bad),
        "start_epoch": state.epoch,
        "epochs": cfg.epochs,
        "init": init,
    }
    rows = read_results(run_dir / "results.csv")[: state.epoch]  # drop rows of an epoch that never reached last.pt
    return Session(
        cfg=cfg,
        run_dir=run_dir,
        rt=rt,
        data=data,
        loaders=loaders,
        parts=parts,
        stopper=stopper,
        state=state,
        saver=CheckpointSaver(run_dir, meta),
        rows=rows,
        header=header,
    )


def run_epoch(s: Session, epoch: int, reporter: Reporter) -> bool:
    """Train and validate one epoch, record it and save checkpoints; True if it is the new best."""
    row = train_epoch(epoch, s.cfg, s.parts, s.loaders, s.rt, s.state, reporter)
    val = None
    if s.data.has_val:
        val = validate(
            s.parts.eval_model(), s.loaders.val, s.data.targets(s.data.val_rows), s.parts.criterion, s.rt, reporter
        )
        row.update(val.metrics)
        if not val.finite:
            reporter.message(f"epoch {epoch + 1}: validation logits or loss are not finite; it cannot be best.pt")
    score = None if val is None else (row[s.cfg.monitor] if val.finite else float("nan"))
    improved = s.stopper.update(epoch + 1, score)
    s.rows.append(row)
    write_results(s.run_dir / "results.csv", s.rows)
    _save_epoch(s, row, improved, val)
    reporter.epoch_end(row, improved)
    return improved


def fit(cfg: TrainConfig, run_dir: Path, reporter: Reporter, resuming: bool = False) -> TrainResult:
    """Train one model (one holdout split, one fold, or all rows with ``full``) into ``run_dir``."""
    s = start_session(cfg, run_dir, reporter, resuming)
    reporter.start(s.header)
    stopped_early = False
    for epoch in range(s.state.epoch, cfg.epochs):
        run_epoch(s, epoch, reporter)
        if s.data.has_val and s.stopper.should_stop:
            stopped_early = True
            reporter.message(f"early stop: {cfg.monitor} has not improved for {cfg.patience} epochs")
            break
    return finish_run(run_dir, s.rows, s.data, s.stopper.best_epoch, stopped_early, s.saver)


def _save_epoch(s: Session, row: dict, improved: bool, val: Validation | None) -> None:
    """best.pt (and the validation predictions behind it) when improved, then last.pt: last is written last,
    so a kill at any point resumes from a consistent epoch."""
    weights = s.parts.eval_model().state_dict()
    metrics = {k: v for k, v in row.items() if k != "epoch"}
    epoch = row["epoch"]
    if improved:
        s.saver.save_best(weights, metrics, epoch)
        if val is not None:
            save_val_predictions(s.run_dir, s.data.val_rows["id"].tolist(), s.data.classes, val)
    state = s.state
    state.epoch, state.stopping, state.rng = epoch, s.stopper.state(), rng_state()
    state.optimizer = s.parts.optimizer.state_dict()
    state.scaler = s.parts.scaler.state_dict() if s.parts.scaler is not None else None
    state.model = s.parts.model.state_dict() if s.parts.ema is not None else None
    s.saver.save_last(weights, metrics, epoch, state.to_dict())


def finish_run(
    run_dir: Path, rows: list[dict], data: RunData, best_epoch: int | None, stopped_early: bool, saver: CheckpointSaver
) -> TrainResult:
    """Plots and summary.json of a finished run."""
    from artkit.plots import plot_confusion, plot_curves

    best_row = next((r for r in rows if r["epoch"] == best_epoch), rows[-1] if rows else {})
    if rows:
        plot_curves(rows, run_dir / "curves.png")
    val_path = run_dir / "val_predictions.npz"
    if val_path.exists():
        with np.load(val_path, allow_pickle=False) as z:
            cm = confusion(z["targets"], z["logits"].argmax(1), len(data.classes))
        plot_confusion(cm, data.classes, run_dir / "confusion_matrix.png")
    best_metrics = {k: v for k, v in best_row.items() if k.startswith("val_") and np.isfinite(v)}
    bad = sorted(data.bad)
    write_summary(
        run_dir,
        {
            "finished": True,
            "best_epoch": best_epoch,
            "best_metrics": best_metrics,
            "epochs_run": len(rows),
            "stopped_early": stopped_early,
            "skipped_bad": bad,
        },
    )
    return TrainResult(
        run_dir=run_dir,
        best_path=saver.best_path,
        last_path=saver.last_path,
        best_epoch=best_epoch,
        best_metrics=best_metrics,
        epochs_run=len(rows),
        stopped_early=stopped_early,
        skipped_bad=bad,
        rows=rows,
    )


# --------------------------------------------------------------------------- entry points


def resume_config(run_dir: Path, overrides: TrainConfig, explicit: set[str]) -> TrainConfig:
    """The run's saved config with the options that may change on resume taken from ``overrides``."""
    saved = load_config(TrainConfig, run_dir / "config.yaml")
    changed = {k for k in explicit if k not in RESUMABLE and getattr(overrides, k) != getattr(saved, k)}
    if changed:
        raise ArtkitError(
            f"--resume continues a run as it began; these options differ: {', '.join(sorted(changed))}",
            f"only {', '.join('--' + k.replace('_', '-') for k in sorted(RESUMABLE - {'resume'}))} "
            "may change; start a new run otherwise",
        )
    return replace(saved, **{k: getattr(overrides, k) for k in explicit & RESUMABLE if k != "resume"}, resume=None)


def fit_new(cfg: TrainConfig, run_dir: Path, reporter: Reporter) -> TrainResult:
    """:func:`fit` into a fresh folder, removed again if no epoch finished (a failed start leaves nothing)."""
    try:
        return fit(cfg, run_dir, reporter)
    except BaseException:
        if not (run_dir / "last.pt").exists():
            remove_run_dir(run_dir)
        raise


def resume_run(cfg: TrainConfig, run_dir: Path, reporter: Reporter) -> TrainResult:
    if not (run_dir / "last.pt").exists():
        raise ArtkitError(f"{run_dir} has no last.pt: it never finished an epoch", "start a new run instead")
    if run_finished(run_dir, cfg.epochs):
        raise ArtkitError(f"{run_dir} already finished {cfg.epochs} epochs", "pass a larger --epochs to continue")
    remove_stale_temp_files(run_dir)
    save_config(cfg, run_dir / "config.yaml", header="artkit train options of this run")
    (run_dir / "summary.json").unlink(missing_ok=True)
    return fit(cfg, run_dir, reporter, resuming=True)
