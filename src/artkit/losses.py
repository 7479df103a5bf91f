"""Loss registry: ``create_loss(name, ...)`` like timm's ``create_model``.

Every loss takes logits and either class indices or soft target distributions (what Mixup and
CutMix produce), so augmentation and loss choice combine freely.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from artkit.errors import ArtkitError

CLASS_WEIGHTS = ("none", "inverse", "sqrt", "effective")


def class_weights(counts: Sequence[int], mode: str, beta: float = 0.999) -> torch.Tensor | None:
    """Per-class weights from training counts, scaled so that sum(w_c * n_c) == sum(n_c).

    'inverse' is 1/n, 'sqrt' is 1/sqrt(n), 'effective' is (1-beta)/(1-beta^n) from Cui et al.,
    "Class-Balanced Loss Based on Effective Number of Samples" (CVPR 2019).
    """
    if mode == "none":
        return None
    n = np.maximum(np.asarray(counts, dtype=np.float64), 1.0)
    if mode == "inverse":
        w = 1.0 / n
    elif mode == "sqrt":
        w = 1.0 / np.sqrt(n)
    elif mode == "effective":
        w = (1.0 - beta) / (1.0 - np.power(beta, n))
    else:
        raise ArtkitError(f"unknown --class-weights '{mode}'", f"choose one of: {', '.join(CLASS_WEIGHTS)}")
    w = w * n.sum() / (w * n).sum()
    return torch.tensor(w, dtype=torch.float32)


def _soft_targets(target: torch.Tensor, n_classes: int, smoothing: float) -> torch.Tensor:
    if target.dtype.is_floating_point:
        return target
    one_hot = F.one_hot(target, n_classes).float()
    return one_hot * (1.0 - smoothing) + smoothing / n_classes if smoothing else one_hot


class WeightedSoftCE(nn.Module):
    """Cross-entropy with optional class weights and label smoothing; equals
    ``F.cross_entropy(weight=w)`` for hard labels and ``F.cross_entropy(label_smoothing=e)`` unweighted."""

    def __init__(self, weight: torch.Tensor | None = None, label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.register_buffer("weight", weight if weight is not None else None)
        self.label_smoothing = label_smoothing

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logp = F.log_softmax(logits.float(), dim=1)
        t = _soft_targets(target, logits.shape[1], self.label_smoothing)
        w = self.weight if self.weight is not None else torch.ones(logits.shape[1], device=logits.device)
        return -(t * w * logp).sum() / (t * w).sum()


class FocalLoss(nn.Module):
    """Multi-class softmax focal loss (Lin et al. 2017): ``-alpha_c (1 - p_c)^gamma log p_c``.

    Normalised like weighted cross-entropy, so at gamma 0 it equals (weighted) CE exactly.
    """

    def __init__(self, gamma: float = 2.0, alpha: torch.Tensor | None = None, label_smoothing: float = 0.0) -> None:
        super().__init__()
        if gamma < 0:
            raise ArtkitError(f"--focal-gamma must be >= 0 (got {gamma})")
        self.gamma = gamma
        self.register_buffer("alpha", alpha if alpha is not None else None)
        self.label_smoothing = label_smoothing

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logp = F.log_softmax(logits.float(), dim=1)
        t = _soft_targets(target, logits.shape[1], self.label_smoothing)
        a = self.alpha if self.alpha is not None else torch.ones(logits.shape[1], device=logits.device)
        modulating = (1.0 - logp.exp()).clamp_min(0.0).pow(self.gamma)
        return -(t * a * modulating * logp).sum() / (t * a).sum()


LossFactory = Callable[..., nn.Module]
LOSSES: dict[str, LossFactory] = {}


def register_loss(name: str) -> Callable[[LossFactory], LossFactory]:
    def wrap(factory: LossFactory) -> LossFactory:
        LOSSES[name] = factory
        return factory

    return wrap


@register_loss("ce")
def _ce(weight: torch.Tensor | None, label_smoothing: float, focal_gamma: float) -> nn.Module:
    return WeightedSoftCE(weight, label_smoothing)


@register_loss("focal")
def _focal(weight: torch.Tensor | None, label_smoothing: float, focal_gamma: float) -> nn.Module:
    return FocalLoss(focal_gamma, weight, label_smoothing)


def create_loss(name: str, class_counts: Sequence[int] | None = None, class_weight_mode: str = "none",
                label_smoothing: float = 0.0, focal_gamma: float = 2.0) -> nn.Module:
    """Build a registered loss; ``class_weight_mode`` turns ``class_counts`` into per-class weights."""
    if name not in LOSSES:
        raise ArtkitError(f"unknown loss '{name}'", f"choose one of: {', '.join(LOSSES)}")
    if not 0.0 <= label_smoothing < 1.0:
        raise ArtkitError(f"--label-smoothing must be in [0, 1) (got {label_smoothing})")
    weight = class_weights(class_counts, class_weight_mode) if class_counts is not None else None
    return LOSSES[name](weight=weight, label_smoothing=label_smoothing, focal_gamma=focal_gamma)
