"""Optimizer and learning-rate schedule (timm's), built from a TrainConfig. timm is imported inside the
builders so that the names stay cheap to read."""

from __future__ import annotations

import contextlib
import logging

from artkit.engine.config import TrainConfig


def build_optimizer(cfg: TrainConfig, model):
    from timm.optim import create_optimizer_v2

    # layer_decay gives each layer group an "lr_scale", which timm's schedulers apply at every update
    common = dict(
        opt=cfg.optimizer,
        lr=cfg.lr,
        weight_decay=cfg.weight_decay,
        momentum=cfg.momentum,
        layer_decay=effective_layer_decay(cfg, model),
    )
    if fused_kernels_for(model):
        try:
            return create_optimizer_v2(model, fused=True, **common)
        except TypeError:  # an optimiser class of this torch without a fused variant
            pass
    return create_optimizer_v2(model, **common)


def fused_kernels_for(model) -> bool:
    """Whether torch has fused optimiser kernels (one pass per tensor for the whole update, instead of one operation
    at a time) for the device ``model``'s parameters are on: an AdamW update of tf_efficientnet_lite0 took 1.8 ms
    against 8.1 ms on a CPU (torch 2.4 and later; CUDA from 2.1)."""
    try:
        from torch.optim.optimizer import _get_fused_kernels_supported_devices
    except ImportError:  # a torch too old to say
        return False
    devices = {p.device.type for p in model.parameters()}
    return len(devices) == 1 and devices <= set(_get_fused_kernels_supported_devices())


def keep_kernels(optimizer, saved: dict) -> None:
    """Load ``saved`` (an optimiser's state dict) into ``optimizer`` but keep the kernels it was built with: a state
    saved by a run with other kernels (another device, another torch, an older artkit) must not switch them, since
    a gradient scaler unscales inside fused kernels only."""
    kernels = {k: optimizer.defaults[k] for k in ("fused", "foreach") if k in optimizer.defaults}
    optimizer.load_state_dict(saved)
    for group in optimizer.param_groups:
        group.update(kernels)


def effective_layer_decay(cfg: TrainConfig, model) -> float | None:
    """``--layer-decay``, or None where it changes nothing (1) or :func:`layer_decay_note` says why not."""
    if cfg.layer_decay in (None, 1) or layer_decay_note(cfg, model):
        return None
    return cfg.layer_decay


def layer_decay_note(cfg: TrainConfig, model) -> str | None:
    """Why a ``--layer-decay`` is not applied, or None when it is (or was not asked for)."""
    if cfg.layer_decay in (None, 1):
        return None
    if not hasattr(model, "group_matcher"):  # timm's fallback would give each tensor a group, the first ~0 lr
        return f"--layer-decay {cfg.layer_decay:g}: {cfg.model} has no layer groups, so every layer trains at --lr"
    if not (cfg.pretrained or cfg.weights):  # nothing to fine-tune: every layer must learn
        return f"--layer-decay {cfg.layer_decay:g} is for fine-tuning: off, as the model starts from random weights"
    return None


def build_scheduler(
    cfg: TrainConfig, optimizer, updates_per_epoch: int, epochs: int | None = None, saved: dict | None = None
):
    """A timm scheduler stepped once per optimiser update, inside a :class:`StretchedSchedule` whose length a time
    budget may change mid-run; a pure function of the update count (and, after re-plans, of ``saved``: the state a
    resumed run had), so a resumed or extended run only needs those. ``epochs`` overrides ``cfg.epochs``."""
    from timm.scheduler import CosineLRScheduler, StepLRScheduler

    from artkit.engine.schedule import StretchedSchedule

    epochs = epochs or cfg.epochs
    total = int(saved["nominal"]) if saved else max(1, epochs * updates_per_epoch)
    warmup = int(saved["warmup"]) if saved else min(int(cfg.warmup_epochs * updates_per_epoch), total // 2)
    common = dict(warmup_t=warmup, warmup_lr_init=cfg.lr * 0.01, t_in_epochs=False)
    if cfg.scheduler == "cosine":
        with _quiet("timm.scheduler.cosine_lr"):  # "will have no effect" for a one-update run: true, and no news
            scheduler = CosineLRScheduler(optimizer, t_initial=total, lr_min=cfg.min_lr, **common)
    elif cfg.scheduler == "step":
        step_updates = (cfg.step_epochs or max(1, epochs // 3)) * updates_per_epoch
        scheduler = StepLRScheduler(optimizer, decay_t=step_updates, decay_rate=cfg.step_gamma, **common)
    else:
        return None
    schedule = StretchedSchedule(scheduler, total, warmup)
    if saved:
        schedule.load_state(saved["segments"])
    return schedule


@contextlib.contextmanager
def _quiet(logger: str):
    """``logger``'s warnings left out while building (timm logs to the root handlers, so they reach the user)."""
    log = logging.getLogger(logger)
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


EMA_HORIZON = 1 / 3  # of the planned updates: what a fitted EMA decay averages over
EMA_DECAY_BOUNDS = (0.9, 0.9999)


def ema_decay(cfg: TrainConfig, updates: int) -> float:
    """``--ema-decay``, or one fitted to a run of ``updates`` optimiser updates: 1 - 1/horizon, the horizon a
    third of the run, so that a short run's average does not still hold the starting weights (0.999 fixed
    keeps 75 % of them after 285 updates) and a long one's averages over more than its last epoch."""
    if cfg.ema_decay is not None:
        return cfg.ema_decay
    low, high = EMA_DECAY_BOUNDS
    return min(max(1 - 1 / max(updates * EMA_HORIZON, 1.0), low), high)


def peak_lr(optimizer) -> float:
    """The largest learning rate of any parameter group (with --layer-decay, the classifier's)."""
    return max(group["lr"] for group in optimizer.param_groups)
