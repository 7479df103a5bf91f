"""The steps of one epoch: training steps (with Mixup, accumulation and AMP) and inference passes, independent
of where data and options come from."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from artkit.engine.device import Runtime
from artkit.engine.optim import peak_lr
from artkit.errors import ArtkitError
from artkit.models.factory import train_mode


class NonFiniteLoss(ArtkitError):
    pass


@dataclass(kw_only=True)
class TrainParts:
    """What one optimisation step needs besides the batch."""

    model: nn.Module
    criterion: Callable[..., torch.Tensor]
    optimizer: torch.optim.Optimizer
    scheduler: Any = None  # a timm scheduler, stepped per update
    scaler: torch.amp.GradScaler | None = None
    ema: Any = None  # timm ModelEmaV3
    mixup: Callable | None = None  # timm Mixup/CutMix
    grad_accum: int = 1
    clip_grad: float | None = None
    net: nn.Module | None = None  # what the forward pass calls: the model wrapped for DistributedDataParallel

    def forward(self, images: torch.Tensor, sync: bool = True) -> torch.Tensor:
        """The logits; with ``sync`` False a distributed model skips its gradient all-reduce (accumulation)."""
        net = self.net if self.net is not None else self.model
        if sync or not hasattr(net, "no_sync"):
            return net(images)
        with net.no_sync():
            return net(images)

    def eval_model(self) -> nn.Module:
        """EMA weights, when kept, are what gets validated and saved."""
        return self.model if self.ema is None else self.ema.module


@dataclass(kw_only=True)
class EpochStats:
    loss: float
    seconds: float
    images_per_s: float
    num_updates: int


@dataclass(kw_only=True)
class Step:
    """One training step, as the step callback (the loop's hooks) sees it."""

    step: int  # 1-based, within the epoch
    steps: int  # in the epoch
    loss: float  # mean training loss of the epoch so far
    lr: float
    images_per_s: float
    images: int  # trained on in the epoch so far
    num_updates: int  # optimiser updates so far in the run, this step's included
    at_update: bool  # the step ended with an optimiser update (a checkpoint or a stop may only come here)
    epoch: int = 0  # 0-based index of the epoch (set by the loop)


StepCallback = Callable[[Step], bool | None]  # -> stop the epoch now?


def train_one_epoch(
    parts: TrainParts,
    loader,
    rt: Runtime,
    num_updates: int,
    on_step: StepCallback | None = None,
    backbone_frozen: bool = False,
    first_step: int = 0,
    carried: tuple[float, int] = (0.0, 0),
) -> EpochStats:
    """One pass over ``loader``, or its first steps when ``on_step`` says stop (at an optimiser update: a time
    budget that ends within the epoch). ``first_step``: the steps of the epoch done before (a run resumed within
    it; ``loader`` then yields only the rest), and ``carried`` their loss sum and images, so the epoch's mean loss
    is the same. Stops with :class:`NonFiniteLoss` at the first NaN/inf loss."""
    train_mode(parts.model, backbone_frozen)
    start = time.perf_counter()
    (total_loss, seen), steps = carried, len(loader)
    parts.optimizer.zero_grad(set_to_none=True)
    for step, (images, targets) in enumerate(loader, start=first_step):
        images, targets = rt.images(images), targets.to(rt.device, non_blocking=True)
        if parts.mixup is not None:
            images, targets = parts.mixup(images, targets)
        updating = updates_through(step + 1, steps, parts.grad_accum) > updates_through(step, steps, parts.grad_accum)
        with rt.autocast():
            logits = parts.forward(images, sync=updating)
        loss = parts.criterion(logits.float(), targets)
        if not torch.isfinite(loss):
            raise NonFiniteLoss(
                f"the loss became {loss.item()} at step {step + 1} of the epoch",
                "lower --lr, add --clip-grad 1.0, or use --amp bf16/off; the last good checkpoint is kept",
            )
        backward = loss / parts.grad_accum
        if updating or parts.net is None:
            (parts.scaler.scale(backward) if parts.scaler is not None else backward).backward()
        else:
            with parts.net.no_sync():  # accumulate locally; the update's backward all-reduces
                (parts.scaler.scale(backward) if parts.scaler is not None else backward).backward()
        if updating:
            num_updates = _update(parts, num_updates)
        total_loss += loss.item() * images.shape[0]
        seen += images.shape[0]
        if on_step is not None:
            speed = (seen - carried[1]) / max(time.perf_counter() - start, 1e-9)
            info = Step(
                step=step + 1,
                steps=steps,
                loss=total_loss / seen,
                lr=peak_lr(parts.optimizer),
                images_per_s=speed,
                images=seen,
                num_updates=num_updates,
                at_update=updating,
            )
            if on_step(info) and updating:
                break
    seconds = time.perf_counter() - start
    fresh = seen - carried[1]
    return EpochStats(
        loss=total_loss / max(seen, 1),
        seconds=seconds,
        images_per_s=fresh / max(seconds, 1e-9),
        num_updates=num_updates,
    )


def updates_through(step: int, steps: int, grad_accum: int) -> int:
    """Optimiser updates in the first ``step`` of an epoch's ``steps`` batches: one every ``grad_accum``
    batches, and one more at the end of the epoch for what is left."""
    return -(-step // grad_accum) if step >= steps else step // grad_accum


def epoch_updates(steps: int, grad_accum: int) -> int:
    """Optimiser updates in a whole epoch of ``steps`` batches."""
    return updates_through(steps, steps, grad_accum)


def _update(parts: TrainParts, num_updates: int) -> int:
    """One optimiser update from the accumulated gradients; returns the new update count."""
    scaler, optimizer = parts.scaler, parts.optimizer
    if parts.clip_grad:
        if scaler is not None:
            scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(parts.model.parameters(), parts.clip_grad)
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    num_updates += 1
    if parts.scheduler is not None:
        parts.scheduler.step_update(num_updates)
    if parts.ema is not None:
        parts.ema.update(parts.model, step=num_updates)
    return num_updates


@torch.no_grad()
def predict_logits(
    model: nn.Module,
    loader,
    rt: Runtime,
    views: Sequence[Callable[[torch.Tensor], torch.Tensor]] | None = None,
    on_step: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Logits (float32, views averaged) and targets for every sample of ``loader``, in order."""
    model.eval()
    outs, targets = [], []
    views = views or [lambda x: x]
    for step, (images, target) in enumerate(loader):
        images = rt.images(images)
        acc = None
        for view in views:
            with rt.autocast():
                logits = model(view(images)).float()
            acc = logits if acc is None else acc + logits
        outs.append((acc / len(views)).cpu())
        targets.append(target)
        if on_step is not None:
            on_step(step + 1, len(loader))
    if not outs:
        return np.zeros((0, 0), np.float32), np.zeros(0, np.int64)
    return torch.cat(outs).numpy().astype(np.float32), torch.cat(targets).numpy()
