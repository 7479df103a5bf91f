"""A training run's setup: its data, model and what trains it, restored from ``last.pt`` when resuming; the
:class:`Session` that the epoch loop (:mod:`artkit.engine.trainer`) and its hooks work with."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from artkit.data.sampler import seed_everything
from artkit.engine.auto import resolve_auto
from artkit.engine.checkpoint import CheckpointSaver, ModelMeta, load_checkpoint
from artkit.engine.config import MONITORS, TrainConfig, check_train_config
from artkit.engine.device import Runtime
from artkit.engine.distributed import SINGLE, Dist, from_env
from artkit.engine.optim import build_optimizer, build_scheduler, ema_decay, keep_kernels, layer_decay_note
from artkit.engine.resume import ResumeState, set_rng_state
from artkit.engine.rundata import Loaders, RunData, build_loaders, prepare_data
from artkit.engine.runs import read_results
from artkit.engine.steps import TrainParts, epoch_updates
from artkit.engine.stopping import EarlyStopping
from artkit.errors import ArtkitError
from artkit.models.factory import DataConfig, create_model, model_data_config
from artkit.models.losses import create_loss
from artkit.models.weights import load_weights
from artkit.options import check_config, to_dict
from artkit.progress import Reporter
from artkit.system import default_workers, keep_freed_memory, loader_workers


def validate_config(cfg: TrainConfig) -> None:
    check_config(cfg)
    check_train_config(cfg)


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


def to_sync_batchnorm(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` with every batch norm synchronised across processes (--sync-bn). timm's converter, not torch's:
    torch's turns timm's BatchNormAct2d into a plain norm and drops the activation it carries (49 of them in
    efficientnet_b0), so the run trained another network than the one its checkpoint is loaded into."""
    from timm.layers import convert_sync_batchnorm

    return convert_sync_batchnorm(model)


def wrap_distributed(
    model: torch.nn.Module, rt: Runtime, dist: Dist, sync_bn: bool, freezes: bool = False
) -> torch.nn.Module | None:
    """The model wrapped in DistributedDataParallel when several processes train it (None for one process).
    ``freezes``: some epochs train the head alone (--freeze-epochs), so DDP must expect parameters without
    gradients (it raised at the second step)."""
    if not dist.active:
        return None
    from torch.nn.parallel import DistributedDataParallel

    if sync_bn:
        if rt.device.type != "cuda":
            raise ArtkitError("--sync-bn needs CUDA GPUs", "leave it out on the CPU")
        model = to_sync_batchnorm(model)
    return DistributedDataParallel(
        model, device_ids=[rt.device.index] if rt.device.type == "cuda" else None, find_unused_parameters=freezes
    )


DEVICE_FAILURE = re.compile(r"CUDA|cuDNN|CUBLAS|cublas|NCCL|device-side|Expected all tensors to be on the same device")


def check_input_size(model: torch.nn.Module, name: str, size: int, rt: Runtime) -> None:
    """One forward pass of a blank image before any work: a size the model cannot take fails here, clearly."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), rt.autocast():
            model(rt.images(torch.zeros(1, 3, size, size)))
    except torch.cuda.OutOfMemoryError:  # a RuntimeError too, but not a size the model cannot take
        raise ArtkitError(
            f"CUDA ran out of memory running {name} on one {size} px image",
            "other processes may hold the GPU's memory (nvidia-smi shows them); else a smaller --model or --img-size",
        ) from None
    except (AssertionError, RuntimeError, ValueError) as exc:
        if DEVICE_FAILURE.search(str(exc)):  # the GPU or its libraries failed, not the size: their own error
            raise
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
    keep_kernels(parts.optimizer, state.optimizer)
    if parts.scaler is not None and state.scaler:
        parts.scaler.load_state_dict(state.scaler)
    if parts.ema is not None:
        parts.ema.module.load_state_dict(last["state_dict"])
    stopper.load_state(state.stopping)
    set_rng_state(state.rng)
    if parts.scheduler is not None:
        parts.scheduler.step_update(state.num_updates)
    return state


@dataclass(kw_only=True)
class Session:
    """Everything a run's epoch loop and its hooks work with."""

    cfg: TrainConfig  # its epochs may change during the run (--time)
    run_dir: Path
    rt: Runtime
    val_rt: Runtime  # validation's: the same device, at inference's precision
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
    dist: Dist = SINGLE  # with several processes, rank 0 writes every file


def start_session(cfg: TrainConfig, run_dir: Path, reporter: Reporter, resuming: bool) -> Session:
    """Data, model, optimisation and (when resuming) the state saved in last.pt."""
    cfg = resolve_auto(cfg)
    validate_config(cfg)
    dist = from_env()
    rt = Runtime.create(cfg.device, cfg.amp, dist.local_rank if dist.active else None, compile=cfg.compile)
    workers = loader_workers(rt.device.type) if cfg.workers is None else cfg.workers
    seed_everything(cfg.seed)
    last = load_checkpoint(run_dir / "last.pt") if resuming else None
    scanners = default_workers() if cfg.workers is None else max(1, cfg.workers)  # reading headers is not the model's
    data = prepare_data(cfg, run_dir, last, scanners, write=dist.main)
    model, init = build_model(cfg, len(data.classes), resuming, reporter)
    if note := layer_decay_note(cfg, model):
        reporter.message(note)
    dcfg = model_data_config(model, cfg.img_size)
    rt.prepare(model)
    check_input_size(model, cfg.model, min(dcfg.img_size, cfg.img_size_start or dcfg.img_size), rt)
    loaders = build_loaders(cfg, data, dcfg, workers, rt, dist)
    parts = build_parts(cfg, model, data, rt, len(loaders.train))
    parts.net = wrap_distributed(model, rt, dist, cfg.sync_bn, freezes=cfg.freeze_epochs > 0)
    # one rank's batches of several vary in size all through an epoch: they take the one extra compile
    parts.compiled = (
        rt.compiled(model if parts.net is None else parts.net, one_batch_size=parts.net is None) if rt.compile else None
    )
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
    val_rt = rt.for_phase(cfg.amp, "inference")
    header = _header(cfg, run_dir, data, loaders, rt, dcfg, state, init, dist)
    header["val_amp"] = val_rt.amp_name if val_rt.amp_dtype != rt.amp_dtype and data.has_val else None
    header["ema"] = _ema_note(cfg, parts)
    header["cache"] = loaders.cache_note
    header["workers"] = workers
    rows = read_results(run_dir / "results.csv")[: state.epoch]  # drop rows of an epoch that never reached last.pt
    return Session(
        dist=dist,
        cfg=cfg,
        run_dir=run_dir,
        rt=rt,
        val_rt=val_rt,
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
        "compile": rt.compile,
        "malloc_kept": keep_freed_memory(),  # Runtime.create made the setting; this reads it back
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
