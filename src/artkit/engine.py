"""The training and inference loops, independent of where data and options come from."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn

from artkit.errors import ArtkitError
from artkit.models import train_mode

AMP_MODES = ("auto", "fp16", "bf16", "off")


def resolve_device(spec: str = "auto") -> torch.device:
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise ArtkitError(f"unknown device '{spec}'", "use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ArtkitError(f"--device {spec}: CUDA is not available here", "use --device cpu (or auto)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ArtkitError(f"--device {spec}: only {torch.cuda.device_count()} CUDA device(s)")
    return device


def resolve_amp(spec: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for full fp32. 'auto' is bf16 on GPUs that have it, else fp16;
    fp32 on CPU, where autocast is slower than it helps."""
    if spec not in AMP_MODES:
        raise ArtkitError(f"unknown --amp '{spec}'", f"choose one of: {', '.join(AMP_MODES)}")
    if spec == "off" or (spec == "auto" and device.type != "cuda"):
        return None
    if spec == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if spec == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ArtkitError("--amp bf16: this GPU has no bfloat16 support", "use --amp fp16")
    return torch.bfloat16 if spec == "bf16" else torch.float16


def use_channels_last(device: torch.device) -> bool:
    """NHWC memory format: faster convolutions on CUDA, and on CPU for EfficientNets (1.2-1.4x per train step)
    while neutral for ResNets and ConvNeXt (bench/bench_channels_last.py, docs/benchmarks.md)."""
    return device.type in ("cuda", "cpu")


def autocast(device: torch.device, dtype: torch.dtype | None):
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()


class NonFiniteLoss(ArtkitError):
    pass


def oom_error(batch_size: int) -> ArtkitError:
    half = max(1, batch_size // 2)
    return ArtkitError(f"CUDA ran out of memory at --batch-size {batch_size}",
                       f"try --batch-size {half} --grad-accum {max(2, batch_size // half)} (same effective batch), "
                       "--amp bf16/fp16, or a smaller --img-size; resume finished epochs with --resume")


def peak_lr(optimizer: torch.optim.Optimizer) -> float:
    """The largest learning rate of any parameter group (with --layer-decay, the classifier's)."""
    return max(group["lr"] for group in optimizer.param_groups)


@dataclass
class EpochStats:
    loss: float
    seconds: float
    images_per_s: float
    num_updates: int


def train_one_epoch(model: nn.Module, loader, criterion: nn.Module, optimizer: torch.optim.Optimizer,
                    scheduler, device: torch.device, amp_dtype: torch.dtype | None, scaler,
                    num_updates: int, grad_accum: int = 1, clip_grad: float | None = None, ema=None,
                    mixup: Callable | None = None, channels_last: bool = False,
                    on_step: Callable[[int, float, float, float], None] | None = None,
                    backbone_frozen: bool = False) -> EpochStats:
    """One pass over ``loader``. Stops with :class:`NonFiniteLoss` at the first NaN/inf loss."""
    train_mode(model, backbone_frozen)
    start = time.perf_counter()
    total_loss, seen, steps = 0.0, 0, len(loader)
    optimizer.zero_grad(set_to_none=True)
    for step, (images, targets) in enumerate(loader):
        images = images.to(device, non_blocking=True)
        targets = targets.to(device, non_blocking=True)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        if mixup is not None:
            images, targets = mixup(images, targets)
        with autocast(device, amp_dtype):
            logits = model(images)
        loss = criterion(logits.float(), targets)
        if not torch.isfinite(loss):
            raise NonFiniteLoss(f"the loss became {loss.item()} at step {step + 1} of the epoch",
                                "lower --lr, add --clip-grad 1.0, or use --amp bf16/off; the last good checkpoint is kept")
        backward = loss / grad_accum
        (scaler.scale(backward) if scaler is not None else backward).backward()
        if (step + 1) % grad_accum == 0 or step + 1 == steps:
            if clip_grad:
                if scaler is not None:
                    scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            num_updates += 1
            if scheduler is not None:
                scheduler.step_update(num_updates)
            if ema is not None:
                ema.update(model, step=num_updates)
        n = images.shape[0]
        total_loss += loss.item() * n
        seen += n
        if on_step is not None:
            elapsed = time.perf_counter() - start
            on_step(step + 1, total_loss / seen, peak_lr(optimizer), seen / max(elapsed, 1e-9))
    seconds = time.perf_counter() - start
    return EpochStats(total_loss / max(seen, 1), seconds, seen / max(seconds, 1e-9), num_updates)


@torch.no_grad()
def predict_logits(model: nn.Module, loader, device: torch.device, amp_dtype: torch.dtype | None = None,
                   views: Sequence[Callable[[torch.Tensor], torch.Tensor]] | None = None, channels_last: bool = False,
                   on_step: Callable[[int, int], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Logits (float32, views averaged) and targets for every sample of ``loader``, in order."""
    model.eval()
    outs, targets = [], []
    views = views or [lambda x: x]
    for step, (images, target) in enumerate(loader):
        images = images.to(device, non_blocking=True)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        acc = None
        for view in views:
            with autocast(device, amp_dtype):
                logits = model(view(images)).float()
            acc = logits if acc is None else acc + logits
        outs.append((acc / len(views)).cpu())
        targets.append(target)
        if on_step is not None:
            on_step(step + 1, len(loader))
    if not outs:
        return np.zeros((0, 0), np.float32), np.zeros(0, np.int64)
    return torch.cat(outs).numpy().astype(np.float32), torch.cat(targets).numpy()


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)
