"""Test-time augmentation views, combinable: ``hflip,five-crop`` is 2 x 5 = 10 views.

Views act on normalised batches (B, C, H, W); their logits are averaged.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import torch
import torch.nn.functional as F

from artkit.errors import ArtkitError

View = Callable[[torch.Tensor], torch.Tensor]


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


def _crop(top: float, left: float, frac: float = 0.875) -> View:
    def view(x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ch, cw = int(round(h * frac)), int(round(w * frac))
        y0, x0 = int(round((h - ch) * top)), int(round((w - cw) * left))
        return F.interpolate(x[..., y0:y0 + ch, x0:x0 + cw], size=(h, w), mode="bilinear", align_corners=False)

    return view


def _scale(factor: float) -> View:
    def view(x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        return F.interpolate(x, size=(int(round(h * factor)), int(round(w * factor))), mode="bilinear",
                             align_corners=False, antialias=factor < 1)

    return view


TTA_GROUPS: dict[str, list[View]] = {
    "none": [_identity],
    "hflip": [_identity, lambda x: x.flip(-1)],
    "vflip": [_identity, lambda x: x.flip(-2)],
    "five-crop": [_crop(0.5, 0.5), _crop(0, 0), _crop(0, 1), _crop(1, 0), _crop(1, 1)],
    "multi-scale": [_scale(0.875), _identity, _scale(1.125)],
}


def parse_tta(spec: str | None) -> list[str]:
    names = [s.strip() for s in (spec or "none").split(",") if s.strip()] or ["none"]
    unknown = [n for n in names if n not in TTA_GROUPS]
    if unknown:
        raise ArtkitError(f"unknown --tta '{', '.join(unknown)}'", f"choose from: {', '.join(TTA_GROUPS)}")
    return [n for n in names if n != "none"] or ["none"]


def build_views(spec: str | None) -> list[View]:
    """Every combination of the named groups' views, applied left to right."""
    groups = [TTA_GROUPS[name] for name in parse_tta(spec)]
    views = []
    for combo in itertools.product(*groups):
        def view(x: torch.Tensor, combo=combo) -> torch.Tensor:
            for fn in combo:
                x = fn(x)
            return x
        views.append(view)
    return views
