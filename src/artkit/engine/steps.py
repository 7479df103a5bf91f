"""The steps of one epoch: training steps (with Mixup, accumulation and AMP) and inference passes, independent
of where data and options come from."""

from __future__ import annotations

import math
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
    net: nn.Module | None = None  # the model wrapped for DistributedDataParallel
    compiled: nn.Module | None = None  # the model (or net) under torch.compile (--compile)

    def forward(self, images: torch.Tensor, sync: bool = True) -> torch.Tensor:
        """The logits; with ``sync`` False a distributed model skips its gradient all-reduce (accumulation)."""
        runs = next(m for m in (self.compiled, self.net, self.model) if m is not None)
        if sync or self.net is None:
            return runs(images)
        with self.net.no_sync():
            return runs(images)

    def eval_model(self) -> nn.Module:
        """EMA weights, when kept, are what gets validated and saved."""
        return self.model if self.ema is None else self.ema.module


@dataclass(kw_only=True)
class EpochStats:
    loss: float
    seconds: float
    images_per_s: float
    num_updates: int
    data_wait: float = 0.0  # seconds of the epoch spent waiting for the loader


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
    # ``loss`` and ``images`` are as of the last read of the loss (on a GPU, up to SYNC_EVERY steps ago); this
    # reads it now (waiting for the device) and gives them exact, or raises NonFiniteLoss: what a checkpoint needs
    exact: Callable[[], tuple[float, int]] | None = None


StepCallback = Callable[[Step], bool | None]  # -> stop the epoch now?


SYNC_EVERY = 16  # on CUDA: steps (or inference batches) between reads on the host; each read waits for the GPU


class LossTally:
    """The epoch's training loss: summed on the device and read back every ``every`` steps, so that on a GPU a
    step never waits for the one before (a read per step did). Every read checks that the loss is finite."""

    def __init__(self, carried: tuple[float, int], device: torch.device, every: int) -> None:
        self.total, self.images = carried  # as of the last read
        self.every = every
        self.pending = torch.zeros((), dtype=torch.float64, device=device)  # summed since the last read
        self.pending_images = self.pending_steps = 0

    def add(self, loss: torch.Tensor, n: int, step: int) -> None:
        if self.every == 1 and not torch.isfinite(loss):  # read every step: stop before the step is taken
            raise _non_finite(float(loss.detach()), f"at step {step}")
        self.pending += loss.detach().double() * n
        self.pending_images += n
        self.pending_steps += 1

    def read(self, step: int, force: bool = False) -> None:
        """Move what the device summed to the host (every ``every`` steps, or now with ``force``)."""
        if not self.pending_steps or (self.pending_steps < self.every and not force):
            return
        value = float(self.pending)
        if not math.isfinite(value):
            raise _non_finite(value, f"by step {step}")
        self.total += value
        self.images += self.pending_images
        self.pending.zero_()
        self.pending_images = self.pending_steps = 0

    @property
    def mean(self) -> float:
        return self.total / max(self.images, 1)


def _non_finite(value: float, where: str) -> NonFiniteLoss:
    return NonFiniteLoss(
        f"the loss became {value} {where} of the epoch",
        "lower --lr, add --clip-grad 1.0, or use --amp bf16/off; the last good checkpoint is kept",
    )


def train_one_epoch(
    parts: TrainParts,
    loader,
    rt: Runtime,
    num_updates: int,
    on_step: StepCallback | None = None,
    backbone_frozen: bool = False,
    first_step: int = 0,
    carried: tuple[float, int] = (0.0, 0),
    sync_every: int | None = None,
) -> EpochStats:
    """One pass over ``loader``, or its first steps when ``on_step`` says stop (at an optimiser update: a time
    budget that ends within the epoch). ``first_step``: the steps of the epoch done before (a run resumed within
    it; ``loader`` then yields only the rest), and ``carried`` their loss sum and images, so the epoch's mean loss
    is the same. The loss is read on the host every ``sync_every`` steps (default: every step on a CPU, where it
    costs nothing, :data:`SYNC_EVERY` on a GPU; ``on_step`` sees the mean as of the last read); a NaN/inf loss
    stops the epoch with :class:`NonFiniteLoss` at that read."""
    train_mode(parts.model, backbone_frozen)
    start = time.perf_counter()
    every = sync_every or (SYNC_EVERY if rt.device.type == "cuda" else 1)
    tally, steps, seen = LossTally(carried, rt.device, every), len(loader), carried[1]
    waited = 0.0  # seconds the step loop waited for the loader's next batch
    batches = iter(loader)
    parts.optimizer.zero_grad(set_to_none=True)
    for step in range(first_step, steps):
        asked = time.perf_counter()
        batch = next(batches, None)
        waited += time.perf_counter() - asked
        if batch is None:
            break
        images, targets = rt.images(batch[0]), batch[1].to(rt.device, non_blocking=True)
        if parts.mixup is not None:
            images, targets = parts.mixup(images, targets)
        updating = updates_through(step + 1, steps, parts.grad_accum) > updates_through(step, steps, parts.grad_accum)
        with rt.autocast():
            logits = parts.forward(images, sync=updating)
        loss = parts.criterion(logits.float(), targets)
        tally.add(loss, images.shape[0], step + 1)
        _backward(parts, loss / parts.grad_accum, updating)
        if updating:
            num_updates = _update(parts, num_updates)
        seen += images.shape[0]
        tally.read(step + 1, force=step + 1 == steps)
        if on_step is not None:

            def exact(at: int = step + 1) -> tuple[float, int]:
                tally.read(at, force=True)
                return tally.mean, tally.images

            info = Step(
                step=step + 1,
                steps=steps,
                loss=tally.mean,
                lr=peak_lr(parts.optimizer),
                images_per_s=(seen - carried[1]) / max(time.perf_counter() - start, 1e-9),
                images=tally.images,
                num_updates=num_updates,
                at_update=updating,
                exact=exact,
            )
            if on_step(info) and updating:
                break
    tally.read(steps, force=True)
    seconds = time.perf_counter() - start
    speed = (seen - carried[1]) / max(seconds, 1e-9)
    return EpochStats(loss=tally.mean, seconds=seconds, images_per_s=speed, num_updates=num_updates, data_wait=waited)


def _backward(parts: TrainParts, loss: torch.Tensor, updating: bool) -> None:
    """Backward of one step; between updates a distributed model accumulates without all-reducing."""
    scaled = parts.scaler.scale(loss) if parts.scaler is not None else loss
    if updating or parts.net is None:
        scaled.backward()
    else:
        with parts.net.no_sync():  # the update's backward all-reduces
            scaled.backward()


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
    on_split: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Logits (float32, views averaged) and targets for every sample of ``loader``, in order."""
    [logits], targets = predict_logits_of([model], loader, rt, views, on_step, on_split)
    return logits, targets


@torch.no_grad()
def predict_logits_of(
    models: Sequence[nn.Module],
    loader,
    rt: Runtime,
    views: Sequence[Callable[[torch.Tensor], torch.Tensor]] | None = None,
    on_step: Callable[[int, int], None] | None = None,
    on_split: Callable[[int, int], None] | None = None,
) -> tuple[list[np.ndarray], np.ndarray]:
    """:func:`predict_logits` of several models in one pass over ``loader``: each batch is decoded once and every
    model (and view) runs on it; one logits array per model. The logits stay on the device and are copied to the
    host every :data:`SYNC_EVERY` batches, so on a GPU the next batch is queued while one runs (a copy per batch
    waited for each). A batch that runs out of GPU memory runs in parts (:class:`InParts`; ``on_split`` hears of
    it)."""
    for model in models:
        model.eval()
    # one stream per model's logits, and the targets last (the loader may have moved them to the GPU too)
    outs: list[list[torch.Tensor]] = [[] for _ in range(len(models) + 1)]  # on the host
    pending: list[list[torch.Tensor]] = [[] for _ in range(len(models) + 1)]  # on the device, since the last copy
    views = views or [lambda x: x]
    in_parts = InParts(on_split)
    for step, (images, target) in enumerate(loader):
        images = rt.images(images)
        for waiting, model in zip(pending, models):
            waiting.append(in_parts(lambda part, model=model: _mean_over_views(model, part, views, rt), images))
        pending[-1].append(target)
        if (step + 1) % SYNC_EVERY == 0:
            _to_host(pending, outs)
        if on_step is not None:
            on_step(step + 1, len(loader))
    _to_host(pending, outs)
    if not outs[-1]:
        return [np.zeros((0, 0), np.float32) for _ in models], np.zeros(0, np.int64)
    *logits, targets = (torch.cat(out) for out in outs)
    return [out.numpy().astype(np.float32) for out in logits], targets.numpy()


def split_note(stage: str, batch: int, part: int) -> str:
    """What the user reads when ``stage``'s batches of ``batch`` images ran out of GPU memory."""
    return (
        f"CUDA ran out of memory in {stage} at {batch} images a batch: it goes on {part} at a time "
        "(a smaller --batch-size saves the retries)"
    )


def _mean_over_views(model: nn.Module, images: torch.Tensor, views, rt: Runtime) -> torch.Tensor:
    acc = None
    for view in views:
        with rt.autocast():
            logits = model(view(images)).float()
        acc = logits if acc is None else acc + logits
    return acc / len(views)


class InParts:
    """Runs inference on whole batches until CUDA runs out of memory, then on parts of them: halved until a part
    fits, and that size kept for the rest of the pass. In eval mode an image's logits do not depend on the others
    in its batch (up to the rounding of the kernels a batch size gets), so validation, predict, eval and ensemble
    go on instead of ending (a validation's fused copy of the model and its batch of twice the training one ran
    out where training fit)."""

    def __init__(self, on_split: Callable[[int, int], None] | None = None) -> None:
        self.size: int | None = None  # of a part; None: whole batches
        self.on_split = on_split  # (batch size, part size) when the part size changes

    def __call__(self, run: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor) -> torch.Tensor:
        while True:
            size = min(self.size or len(images), len(images))
            try:
                if size == len(images):
                    return run(images)
                return torch.cat([run(part) for part in images.split(size)])
            except torch.cuda.OutOfMemoryError:
                if size == 1:
                    raise
            # out of the except block, so that its traceback no longer holds the failed part's tensors
            torch.cuda.empty_cache()
            self.size = size // 2
            if self.on_split is not None:
                self.on_split(len(images), self.size)


def _to_host(pending: list[list[torch.Tensor]], outs: list[list[torch.Tensor]]) -> None:
    """Move what each stream has pending on the device to its host list, one copy (one wait for the device) each."""
    for waiting, out in zip(pending, outs):
        if waiting:
            out.append(torch.cat(waiting).cpu())
            waiting.clear()
