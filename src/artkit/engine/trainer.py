"""``artkit train`` as a plain function: a TrainConfig in, a run directory and a TrainResult out.

:func:`fit` reads as a list of steps: prepare the data, build the model and what trains it, then an epoch
loop (train, validate, record, save) whose bookkeeping lives in :class:`EarlyStopping`,
:class:`CheckpointSaver` and :class:`ResumeState`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from artkit.configs import check_config, load_config, options, save_config, to_dict
from artkit.data.sampler import seed_everything
from artkit.engine.auto import resolve_auto
from artkit.engine.budget import EpochPlanner, TimeBudget
from artkit.engine.checkpoint import CheckpointSaver, ModelMeta, load_checkpoint
from artkit.engine.config import MONITORS, TrainConfig, check_train_config, parse_duration
from artkit.engine.device import Runtime, oom_error
from artkit.engine.distributed import SINGLE, Dist, broadcast, from_env, gather_rows, shard_indices
from artkit.engine.loop import TrainParts, epoch_updates, predict_logits, train_one_epoch, updates_through
from artkit.engine.optim import build_optimizer, build_scheduler, ema_decay, layer_decay_note, peak_lr
from artkit.engine.resume import ResumeState, rng_state, set_rng_state
from artkit.engine.rundata import (
    CONFIG_HEADER,
    Loaders,
    RunData,
    build_loaders,
    prepare_data,
    progressive_size,
    train_loader,
)
from artkit.engine.runs import (
    clear_running,
    mark_running,
    read_results,
    remove_run_dir,
    run_finished,
    write_results,
    write_summary,
)
from artkit.engine.stopping import EarlyStopping
from artkit.errors import ArtkitError
from artkit.health import WARN_AFTER_EPOCHS, learning_warning
from artkit.metrics import confusion, summary_metrics
from artkit.models.factory import DataConfig, create_model, model_data_config, set_backbone_frozen
from artkit.models.losses import create_loss
from artkit.models.weights import load_weights
from artkit.reader import load_npz
from artkit.reporting import Reporter
from artkit.system import default_workers
from artkit.writer import remove_stale_temp_files, save_npz

RANK_SEED_STRIDE = 100_003  # keeps the (seed, epoch) streams of different ranks apart
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
    warning: str | None = None  # the run looks like it learned nothing (artkit.health)
    rows: list[dict[str, Any]] = field(default_factory=list)
    folds: list[TrainResult] = field(default_factory=list)
    cv: dict[str, Any] | None = None


def validate_config(cfg: TrainConfig) -> None:
    check_config(cfg)
    check_train_config(cfg)


# --------------------------------------------------------------------------- data


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
        if report.missing:
            reporter.warning(
                f"{len(report.missing)} of the model's {report.loaded + len(report.skipped) + len(report.missing)} "
                f"tensors are not in {cfg.weights} and start random (layers: {', '.join(report.missing_layers())}); "
                "is it the right model's file?"
            )
        return model, f"weights from {cfg.weights}"
    return model, "timm pretrained weights" if pretrained else "random init"


def wrap_distributed(model: torch.nn.Module, rt: Runtime, dist: Dist, sync_bn: bool) -> torch.nn.Module | None:
    """The model wrapped in DistributedDataParallel when several processes train it (None for one process)."""
    if not dist.active:
        return None
    from torch.nn.parallel import DistributedDataParallel

    if sync_bn:
        if rt.device.type != "cuda":
            raise ArtkitError("--sync-bn needs CUDA GPUs", "leave it out on the CPU")
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return DistributedDataParallel(model, device_ids=[rt.device.index] if rt.device.type == "cuda" else None)


def check_input_size(model: torch.nn.Module, name: str, size: int, rt: Runtime) -> None:
    """One forward pass of a blank image before any work: a size the model cannot take fails here, clearly."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), rt.autocast():
            model(rt.images(torch.zeros(1, 3, size, size)))
    except (AssertionError, RuntimeError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise ArtkitError(
            f"{name} cannot take {size} x {size} px images ({reason})",
            "choose another --img-size (a multiple of 32 suits most models)",
        ) from None
    finally:
        model.train(was_training)


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
    updates_per_epoch = epoch_updates(steps_per_epoch, cfg.grad_accum)
    ema = None
    if cfg.ema:
        from timm.utils import ModelEmaV3

        ema = ModelEmaV3(model, decay=ema_decay(cfg, updates_per_epoch * (epochs or cfg.epochs)))
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
    model: torch.nn.Module, loader, targets: np.ndarray, criterion, rt: Runtime, reporter: Reporter, dist: Dist = SINGLE
) -> Validation:
    """Metrics of the validation split; each rank runs its share of the rows and every rank gets all logits."""
    logits, _ = predict_logits(
        model, loader, rt, on_step=lambda done, total: reporter.progress("validate", done, total)
    )
    logits = gather_rows(shard_indices(len(targets), dist), logits, dist, len(targets))
    with torch.no_grad():
        loss = float(criterion(torch.from_numpy(logits).to(rt.device), torch.from_numpy(targets).to(rt.device)))
    finite = bool(np.isfinite(logits).all()) and np.isfinite(loss)
    m = summary_metrics(targets, logits.argmax(1))
    metrics = {"val_loss": loss, "val_acc": m["acc"], "val_macro_f1": m["macro_f1"]}
    return Validation(metrics=metrics, logits=logits, targets=targets, finite=finite)


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

    cfg: TrainConfig  # its epochs may change during the run (--time)
    run_dir: Path
    rt: Runtime
    data: RunData
    dcfg: DataConfig
    workers: int
    loaders: Loaders
    parts: TrainParts
    stopper: EarlyStopping
    state: ResumeState
    saver: CheckpointSaver
    rows: list[dict[str, Any]]
    header: dict[str, Any]  # what the reporter shows when the run starts
    planner: EpochPlanner | None = None  # set with a time budget
    dist: Dist = SINGLE  # with several processes, rank 0 writes every file
    warning: str | None = None  # the latest epoch looks like a model that learned nothing (artkit.health)


def start_session(cfg: TrainConfig, run_dir: Path, reporter: Reporter, resuming: bool) -> Session:
    """Data, model, optimisation and (when resuming) the state saved in last.pt."""
    cfg = resolve_auto(cfg)
    validate_config(cfg)
    dist = from_env()
    rt = Runtime.create(cfg.device, cfg.amp, dist.local_rank if dist.active else None)
    workers = default_workers() if cfg.workers is None else cfg.workers
    seed_everything(cfg.seed)
    last = load_checkpoint(run_dir / "last.pt") if resuming else None
    data = prepare_data(cfg, run_dir, last, workers, write=dist.main)
    model, init = build_model(cfg, len(data.classes), resuming, reporter)
    if note := layer_decay_note(cfg, model):
        reporter.message(note)
    dcfg = model_data_config(model, cfg.img_size)
    rt.prepare(model)
    check_input_size(model, cfg.model, min(dcfg.img_size, cfg.img_size_start or dcfg.img_size), rt)
    loaders = build_loaders(cfg, data, dcfg, workers, rt, dist)
    parts = build_parts(cfg, model, data, rt, len(loaders.train))
    parts.net = wrap_distributed(model, rt, dist, cfg.sync_bn)
    stopper = EarlyStopping(mode=MONITORS[cfg.monitor], patience=cfg.patience)
    state = restore(last, parts, stopper) if last is not None else ResumeState()
    # the schedule as re-planned before the stop; a larger --epochs on resume plans it anew for the longer run
    saved = state.extra.get("schedule")
    if saved and saved.get("epochs") == cfg.epochs and parts.scheduler is not None:
        upe = epoch_updates(len(loaders.train), cfg.grad_accum)
        parts.scheduler = build_scheduler(cfg, parts.optimizer, upe, saved=saved)
        parts.scheduler.step_update(state.num_updates)
    meta = ModelMeta(
        model_name=cfg.model,
        classes=data.classes,
        img_size=dcfg.img_size,
        mean=dcfg.mean,
        std=dcfg.std,
        config=to_dict(cfg),
    )
    header = _header(cfg, run_dir, data, loaders, rt, dcfg, state, init, dist)
    header["ema"] = _ema_note(cfg, parts)
    rows = read_results(run_dir / "results.csv")[: state.epoch]  # drop rows of an epoch that never reached last.pt
    return Session(
        dist=dist,
        cfg=cfg,
        run_dir=run_dir,
        rt=rt,
        data=data,
        dcfg=dcfg,
        workers=workers,
        loaders=loaders,
        parts=parts,
        stopper=stopper,
        state=state,
        saver=CheckpointSaver(run_dir, meta),
        rows=rows,
        header=header,
    )


def _header(
    cfg: TrainConfig,
    run_dir: Path,
    data: RunData,
    loaders: Loaders,
    rt: Runtime,
    dcfg: DataConfig,
    state: ResumeState,
    init: str,
    dist: Dist,
) -> dict[str, Any]:
    """What the reporter shows when the run starts (and the loggers record)."""
    return {
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
        "chosen": cfg.chosen or {},
        "time": cfg.time,
        "config": to_dict(cfg),
        "processes": dist.world,
        "batch": cfg.batch_size,
    }


def _ema_note(cfg: TrainConfig, parts: TrainParts) -> str | None:
    """How the EMA's decay was set, for the run header (None without EMA)."""
    if parts.ema is None:
        return None
    if cfg.ema_decay is not None:
        return f"decay {cfg.ema_decay:g}"
    if cfg.time:
        return "decay fitted to the epochs the time budget plans"
    return f"decay {parts.ema.decay:.4f}, fitted to {cfg.epochs} epochs"


def set_epochs(
    s: Session, epochs: int, reporter: Reporter, num_updates: int | None = None, stop_step: int | None = None
) -> None:
    """Change the run's length (a time budget's plan): what is left of the schedule is stretched or shortened to
    end with the new last epoch, or at ``stop_step`` of the current one (the rate never climbs back), from
    ``num_updates`` (mid-epoch, the live count; ``s.state``'s is the count when the epoch began)."""
    if epochs == s.cfg.epochs and stop_step is None:
        return
    s.cfg = replace(s.cfg, epochs=epochs)
    steps = len(s.loaders.train)
    updates_per_epoch = epoch_updates(steps, s.cfg.grad_accum)
    total = updates_per_epoch * epochs
    if stop_step is not None:  # the current epoch is the last, and ends early
        total = s.state.num_updates + updates_through(stop_step, steps, s.cfg.grad_accum)
    now = s.state.num_updates if num_updates is None else num_updates
    if s.parts.scheduler is not None:
        s.parts.scheduler.replan(now, total)
        s.parts.scheduler.step_update(now)
    if s.parts.ema is not None:
        s.parts.ema.decay = ema_decay(s.cfg, total)
    reporter.planned(epochs)
    if s.dist.main:
        save_config(s.cfg, s.run_dir / "config.yaml", header=CONFIG_HEADER)
    if s.planner is not None and not s.planner.epoch_seconds:  # the first plan; later ones say why they changed
        ema = f"; EMA decay {s.parts.ema.decay:.4f}" if s.parts.ema is not None and s.cfg.ema_decay is None else ""
        if stop_step is None:
            reporter.message(f"--time {s.cfg.time}: {epochs} epoch(s) fit in the budget{ema}")
        else:
            minutes = (s.planner.assumed_seconds or 0) / 60
            reporter.message(
                f"--time {s.cfg.time}: an epoch takes about {minutes:.1f} min, more than the budget: the run trains "
                f"{stop_step:,} of {steps:,} steps of epoch {epochs} and validates there (the schedule runs over "
                f"steps){ema}"
            )


def _probe(s: Session, epoch: int, reporter: Reporter):
    """The step callback of an epoch: the reporter's, plus a time budget's plan: the first plan after the first
    steps of the run, and an earlier end (the schedule shortened to end with this epoch) when the epochs planned
    after this one no longer fit."""
    if s.planner is None:
        return reporter.step
    planner, first = s.planner, not s.planner.epoch_seconds
    started = planner.budget.clock()

    def on_step(step: int, loss: float, lr: float, images_per_s: float) -> bool:
        """True: the budget ends the run at this step."""
        reporter.step(step, loss, lr, images_per_s)
        seconds = planner.budget.clock() - started
        if step < planner.probe_steps():  # too few steps to judge the speed by
            return False
        # a cut at an epoch's last step must still leave the schedule at its end (a CI failure: lr one update short)
        updates = s.state.num_updates + updates_through(step, len(s.loaders.train), s.cfg.grad_accum)
        if first and step == planner.probe_steps():
            total = broadcast(planner.from_steps(epoch, step, seconds), s.dist)
            set_epochs(s, total, reporter, updates, stop_step=broadcast(planner.stop_step, s.dist))
        elif s.cfg.epochs > epoch + 1 and broadcast(planner.out_of_time(step, seconds), s.dist):
            set_epochs(s, epoch + 1, reporter, updates)
        elif s.cfg.epochs == epoch + 1 and planner.stop_step is None:
            stop = broadcast(planner.stop_within(step, seconds), s.dist)
            if stop is not None:
                reporter.message(
                    f"--time {s.cfg.time}: the last epoch runs slower than planned: it ends at step {stop}"
                )
                set_epochs(s, epoch + 1, reporter, updates, stop_step=stop)
        return planner.stop_step is not None and step >= planner.stop_step

    return on_step


def _train_size(s: Session, epoch: int) -> None:
    """Progressive resizing: a new training loader when the epoch's image size changes."""
    if not s.cfg.img_size_start:
        return
    size = progressive_size(s.cfg.img_size_start, s.dcfg.img_size, epoch, s.cfg.epochs)
    if size != s.loaders.img_size:
        s.loaders.train = train_loader(s.cfg, s.data, s.dcfg, size, s.workers, s.rt, s.loaders.sampler)
        s.loaders.img_size = size


def train_epoch(s: Session, epoch: int, reporter: Reporter) -> dict[str, Any]:
    """Train one epoch; returns its results.csv row (validation columns still NaN)."""
    cfg = s.cfg
    # dropout and Mixup draws depend only on (seed, epoch), and differ between ranks
    seed_everything(cfg.seed + epoch + RANK_SEED_STRIDE * s.dist.rank)
    s.loaders.sampler.set_epoch(epoch)
    _train_size(s, epoch)
    frozen = epoch < cfg.freeze_epochs
    if cfg.freeze_epochs:
        set_backbone_frozen(s.parts.model, frozen)
    reporter.epoch_start(epoch + 1, cfg.epochs, len(s.loaders.train))
    try:
        stats = train_one_epoch(
            s.parts, s.loaders.train, s.rt, s.state.num_updates, _probe(s, epoch, reporter), backbone_frozen=frozen
        )
    except torch.cuda.OutOfMemoryError:
        raise oom_error(cfg.batch_size) from None
    s.state.num_updates = stats.num_updates
    nan = float("nan")
    return {
        "epoch": epoch + 1,
        "lr": peak_lr(s.parts.optimizer),
        "train_loss": stats.loss,
        "val_loss": nan,
        "val_acc": nan,
        "val_macro_f1": nan,
        "seconds": stats.seconds,
        "images_per_s": stats.images_per_s * s.dist.world,  # all ranks together
    }


def run_epoch(s: Session, epoch: int, reporter: Reporter) -> bool:
    """Train and validate one epoch, record it and save checkpoints; True if it is the new best."""
    row = train_epoch(s, epoch, reporter)
    val = None
    if s.data.has_val:
        val = validate(
            s.parts.eval_model(),
            s.loaders.val,
            s.data.targets(s.data.val_rows),
            s.parts.criterion,
            s.rt,
            reporter,
            s.dist,
        )
        row.update(val.metrics)
        if not val.finite:
            reporter.message(f"epoch {epoch + 1}: validation logits or loss are not finite; it cannot be best.pt")
    score = None if val is None else (row[s.cfg.monitor] if val.finite else float("nan"))
    improved = s.stopper.update(epoch + 1, score)
    s.rows.append(row)
    if s.dist.main:
        write_results(s.run_dir / "results.csv", s.rows)
        _save_epoch(s, row, improved, val)
    reporter.epoch_end(row, improved)
    _check_learning(s, epoch + 1, val, reporter)
    return improved


def _check_learning(s: Session, epochs_done: int, val: Validation | None, reporter: Reporter) -> None:
    """Warn, once it holds after the first epochs, that validation says the model has learned nothing."""
    if val is None or not val.finite or epochs_done < min(WARN_AFTER_EPOCHS, s.cfg.epochs):
        return
    warning = learning_warning(val.logits.argmax(1), val.targets, s.data.classes, val.metrics["val_macro_f1"])
    if warning and warning.split(" ")[0] != (s.warning or "").split(" ")[0]:
        reporter.warning(f"epoch {epochs_done}: {warning}; the model may have learned nothing")
    s.warning = warning


def _size_growth(s: Session, next_epoch: int) -> float:
    """How much longer the next epoch takes than the last one because progressive resizing grows the images."""
    if not s.cfg.img_size_start or next_epoch >= s.cfg.epochs:
        return 1.0
    nxt = progressive_size(s.cfg.img_size_start, s.dcfg.img_size, next_epoch, s.cfg.epochs)
    return (nxt / s.loaders.img_size) ** 2


def _replan(s: Session, done: int, seconds: float, reporter: Reporter) -> None:
    """After an epoch: the budget's new plan, with one line saying why when the number of epochs changes."""
    planner, before = s.planner, s.planner.assumed_seconds
    epochs = broadcast(max(done, planner.after_epoch(done, seconds, s.cfg.epochs)), s.dist)
    if epochs != s.cfg.epochs:
        now = planner.assumed_seconds or seconds
        pace = "slower" if now > (before or now) else "faster"
        reporter.message(
            f"--time {s.cfg.time}: epochs take {now:.0f} s, {pace} than the {before or now:.0f} s planned: "
            f"{s.cfg.epochs} → {epochs} epochs (the rest of the schedule is stretched or shortened, never restarted)"
        )
    set_epochs(s, epochs, reporter)


def _planner(s: Session, budget: TimeBudget | None, reporter: Reporter) -> EpochPlanner | None:
    """The time budget's planner; a resumed run plans its remaining epochs from the epochs it has timed."""
    if budget is None and s.cfg.time:
        budget = TimeBudget(seconds=parse_duration(s.cfg.time))
    if budget is None:
        return None
    budget.classes = len(s.data.classes)
    val_ratio = s.loaders.val_size / max(s.loaders.train_size, 1)
    planner = EpochPlanner(budget=budget, steps_per_epoch=len(s.loaders.train), val_per_train_image=val_ratio)
    if s.rows:  # resumed: results.csv has the train seconds of each epoch; validation adds about a third per image
        s.planner = planner
        timed = [r["seconds"] * (1 + val_ratio / 3) for r in s.rows]
        set_epochs(s, planner.total(s.state.epoch, float(np.median(timed))), reporter)
        planner.epoch_seconds.extend(timed)
    return planner


def fit(
    cfg: TrainConfig, run_dir: Path, reporter: Reporter, resuming: bool = False, budget: TimeBudget | None = None
) -> TrainResult:
    """Train one model (one holdout split, one fold, or all rows with ``full``) into ``run_dir``; with a time
    budget (``budget``, or ``cfg.time`` from now) the number of epochs is planned to fill it."""
    s = start_session(cfg, run_dir, reporter, resuming)
    if resuming and s.dist.main:  # only now that the run can go on does its record change
        save_config(cfg, run_dir / "config.yaml", header=CONFIG_HEADER)
        (run_dir / "summary.json").unlink(missing_ok=True)
    if s.dist.main:
        mark_running(run_dir)  # `artkit runs` shows it as running, not interrupted
    try:
        return _epochs(s, cfg, run_dir, reporter, budget)
    finally:
        if s.dist.main:
            clear_running(run_dir)


def _epochs(s: Session, cfg: TrainConfig, run_dir: Path, reporter: Reporter, budget: TimeBudget | None) -> TrainResult:
    """The epoch loop of :func:`fit`, from the session's state to the finished run."""
    s.planner = _planner(s, budget, reporter)
    reporter.start({**s.header, "epochs": s.cfg.epochs})
    for note in s.data.notes:
        reporter.message(f"note: {note}")
    stopped_early, epoch = False, s.state.epoch
    while epoch < s.cfg.epochs:
        clock = s.planner.budget.clock if s.planner is not None else time.perf_counter
        started = clock()
        run_epoch(s, epoch, reporter)
        epoch += 1
        if s.planner is not None:
            _replan(s, epoch, (clock() - started) * _size_growth(s, epoch), reporter)
        if s.data.has_val and s.stopper.should_stop:
            stopped_early = True
            reporter.message(f"early stop: {cfg.monitor} has not improved for {cfg.patience} epochs")
            break
    return finish_run(
        run_dir, s.rows, s.data, s.stopper.best_epoch, stopped_early, s.saver, write=s.dist.main, warning=s.warning
    )


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
    if s.parts.scheduler is not None:  # its shape after re-plans, so that a resumed run follows the same curve
        state.extra["schedule"] = {**s.parts.scheduler.state(), "epochs": s.cfg.epochs}
    s.saver.save_last(weights, metrics, epoch, state.to_dict())


def finish_run(
    run_dir: Path,
    rows: list[dict],
    data: RunData,
    best_epoch: int | None,
    stopped_early: bool,
    saver: CheckpointSaver,
    write: bool = True,
    warning: str | None = None,
) -> TrainResult:
    """Plots and summary.json of a finished run (``write``: rank 0 writes them); ``warning``: the last epoch looked
    like a model that learned nothing."""
    best_row = next((r for r in rows if r["epoch"] == best_epoch), rows[-1] if rows else {})
    best_metrics = {k: v for k, v in best_row.items() if k.startswith("val_") and np.isfinite(v)}
    bad = sorted(data.bad)
    if write:
        _finish_files(run_dir, rows, data)
        write_summary(
            run_dir,
            {
                "finished": True,
                "best_epoch": best_epoch,
                "best_metrics": best_metrics,
                "epochs_run": len(rows),
                "stopped_early": stopped_early,
                "skipped_bad": bad,
                "warning": warning,
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
        warning=warning,
    )


def _finish_files(run_dir: Path, rows: list[dict], data: RunData) -> None:
    from artkit.plots import plot_confusion, plot_curves

    if rows:
        plot_curves(rows, run_dir / "curves.png")
    val_path = run_dir / "val_predictions.npz"
    if val_path.exists():
        z = load_npz(val_path, ("targets", "logits"))
        cm = confusion(z["targets"], z["logits"].argmax(1), len(data.classes))
        plot_confusion(cm, data.classes, run_dir / "confusion_matrix.png")


# --------------------------------------------------------------------------- entry points


def resume_config(run_dir: Path, overrides: TrainConfig, explicit: set[str]) -> TrainConfig:
    """The run's saved config with the options that may change on resume taken from ``overrides``. A time budget
    applies to a resumed run only when given again (it is then the budget for what is left)."""
    saved = load_config(TrainConfig, run_dir / "config.yaml")
    changed = {k for k in explicit if k not in RESUMABLE and getattr(overrides, k) != getattr(saved, k)}
    if changed:
        raise ArtkitError(
            f"--resume continues a run as it began; these options differ: {', '.join(sorted(changed))}",
            f"only {', '.join('--' + k.replace('_', '-') for k in sorted(RESUMABLE - {'resume'}))} "
            "may change; start a new run otherwise",
        )
    kept = {k: getattr(overrides, k) for k in explicit & RESUMABLE if k != "resume"}
    return replace(saved, **{"time": None, **kept}, resume=None)


def fit_new(cfg: TrainConfig, run_dir: Path, reporter: Reporter, budget: TimeBudget | None = None) -> TrainResult:
    """:func:`fit` into a fresh folder, removed again if no epoch finished (a failed start leaves nothing)."""
    try:
        return fit(cfg, run_dir, reporter, budget=budget)
    except BaseException:
        if from_env().main and not (run_dir / "last.pt").exists():
            remove_run_dir(run_dir)
        raise


def resume_run(cfg: TrainConfig, run_dir: Path, reporter: Reporter, budget: TimeBudget | None = None) -> TrainResult:
    if not (run_dir / "last.pt").exists():
        raise ArtkitError(f"{run_dir} has no last.pt: it never finished an epoch", "start a new run instead")
    if not cfg.time and run_finished(run_dir, cfg.epochs):
        raise ArtkitError(f"{run_dir} already finished {cfg.epochs} epochs", "pass a larger --epochs to continue")
    dist = from_env()
    if dist.main:  # rank 0 tidies; the others would race it for the same files
        remove_stale_temp_files(run_dir)
    broadcast(None, dist)  # every rank starts once the folder is tidy
    return fit(cfg, run_dir, reporter, resuming=True, budget=budget)
