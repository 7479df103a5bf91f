"""Loss registry: ``create_loss(name, ...)`` like timm's ``create_model``; a new loss is one
:func:`register_loss` entry.

Every loss takes logits and either class indices or soft target distributions (what Mixup and
CutMix produce), so augmentation and loss choice combine freely. torch is imported when a loss is
built or called, so the registry (names and descriptions) is cheap to read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

from artkit.errors import ArtkitError

CLASS_WEIGHTS = {
    "none": "every class weighs 1",
    "inverse": "1 / class count",
    "sqrt": "1 / sqrt(class count)",
    "effective": "class-balanced weights of Cui et al. 2019 (beta 0.999)",
}
Loss = Callable[..., object]  # (logits, target) -> a scalar tensor


def class_weights(counts: Sequence[int], mode: str, beta: float = 0.999):
    """Per-class weights from training counts as a float32 tensor, scaled so that sum(w_c * n_c) == sum(n_c);
    None for 'none'. 'effective' is (1-beta)/(1-beta^n) from Cui et al., "Class-Balanced Loss Based on
    Effective Number of Samples" (CVPR 2019)."""
    import numpy as np
    import torch

    if mode not in CLASS_WEIGHTS:
        raise ArtkitError(f"unknown --class-weights '{mode}'", f"choose one of: {', '.join(CLASS_WEIGHTS)}")
    if mode == "none":
        return None
    n = np.maximum(np.asarray(counts, dtype=np.float64), 1.0)
    w = {
        "inverse": lambda: 1.0 / n,
        "sqrt": lambda: 1.0 / np.sqrt(n),
        "effective": lambda: (1.0 - beta) / (1.0 - np.power(beta, n)),
    }[mode]()
    w = w * n.sum() / (w * n).sum()
    return torch.tensor(w, dtype=torch.float32)


def soft_targets(target, n_classes: int, smoothing: float):
    """Class indices as (smoothed) one-hot rows; soft targets pass through."""
    import torch.nn.functional as F

    if target.dtype.is_floating_point:
        return target
    one_hot = F.one_hot(target, n_classes).float()
    return one_hot * (1.0 - smoothing) + smoothing / n_classes if smoothing else one_hot


def weighted_soft_ce(logits, target, weight=None, label_smoothing: float = 0.0):
    """Cross-entropy with optional class weights and label smoothing; equals ``F.cross_entropy(weight=w)``
    for hard labels and ``F.cross_entropy(label_smoothing=e)`` unweighted."""
    import torch

    logp = torch.log_softmax(logits.float(), dim=1)
    t = soft_targets(target, logits.shape[1], label_smoothing)
    w = weight if weight is not None else torch.ones(logits.shape[1], device=logits.device)
    return -(t * w * logp).sum() / (t * w).sum()


def focal_loss(logits, target, weight=None, label_smoothing: float = 0.0, gamma: float = 2.0):
    """Multi-class softmax focal loss (Lin et al. 2017): ``-alpha_c (1 - p_c)^gamma log p_c``, with the class
    weights as alpha. Normalised like weighted cross-entropy, so at gamma 0 it equals (weighted) CE exactly."""
    import torch

    logp = torch.log_softmax(logits.float(), dim=1)
    t = soft_targets(target, logits.shape[1], label_smoothing)
    a = weight if weight is not None else torch.ones(logits.shape[1], device=logits.device)
    modulating = (1.0 - logp.exp()).clamp_min(0.0).pow(gamma)
    return -(t * a * modulating * logp).sum() / (t * a).sum()


@dataclass(frozen=True, kw_only=True)
class LossEntry:
    description: str
    build: Callable[..., Loss]  # (weight, label_smoothing, focal_gamma) -> loss


LOSSES: dict[str, LossEntry] = {}


def register_loss(name: str, description: str) -> Callable[[Callable[..., Loss]], Callable[..., Loss]]:
    def wrap(build: Callable[..., Loss]) -> Callable[..., Loss]:
        LOSSES[name] = LossEntry(description=description, build=build)
        return build

    return wrap


@register_loss("ce", "cross-entropy (with --label-smoothing and --class-weights)")
def _ce(weight, label_smoothing: float, focal_gamma: float) -> Loss:
    return partial(weighted_soft_ce, weight=weight, label_smoothing=label_smoothing)


@register_loss("focal", "focal loss (--focal-gamma; --class-weights are its alpha)")
def _focal(weight, label_smoothing: float, focal_gamma: float) -> Loss:
    return partial(focal_loss, weight=weight, label_smoothing=label_smoothing, gamma=focal_gamma)


def create_loss(
    name: str,
    class_counts: Sequence[int] | None = None,
    class_weight_mode: str = "none",
    label_smoothing: float = 0.0,
    focal_gamma: float = 2.0,
    device=None,
) -> Loss:
    """Build a registered loss; ``class_weight_mode`` turns ``class_counts`` into per-class weights
    (placed on ``device``)."""
    if name not in LOSSES:
        raise ArtkitError(f"unknown loss '{name}'", f"choose one of: {', '.join(LOSSES)}")
    if not 0.0 <= label_smoothing < 1.0:
        raise ArtkitError(f"--label-smoothing must be in [0, 1) (got {label_smoothing})")
    if focal_gamma < 0:
        raise ArtkitError(f"--focal-gamma must be >= 0 (got {focal_gamma})")
    weight = class_weights(class_counts, class_weight_mode) if class_counts is not None else None
    if weight is not None and device is not None:
        weight = weight.to(device)
    return LOSSES[name].build(weight=weight, label_smoothing=label_smoothing, focal_gamma=focal_gamma)
