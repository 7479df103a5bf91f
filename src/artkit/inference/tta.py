"""Test-time augmentation views, combinable: ``hflip,five-crop`` is 2 x 5 = 10 views; a new view group
is one :data:`TTA_GROUPS` entry.

Views act on normalised batches (B, C, H, W); their logits are averaged. torch is imported when a view
runs, so the names stay cheap to read (``--help``).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

from artkit.errors import ArtkitError

View = Callable[[object], object]  # a batch tensor in, a batch tensor out


def _identity(x):
    return x


def _hflip(x):
    return x.flip(-1)


def _vflip(x):
    return x.flip(-2)


def _crop(top: float, left: float, frac: float = 0.875) -> View:
    def view(x):
        import torch.nn.functional as F

        h, w = x.shape[-2:]
        ch, cw = int(round(h * frac)), int(round(w * frac))
        y0, x0 = int(round((h - ch) * top)), int(round((w - cw) * left))
        return F.interpolate(x[..., y0 : y0 + ch, x0 : x0 + cw], size=(h, w), mode="bilinear", align_corners=False)

    return view


def _scale(factor: float) -> View:
    def view(x):
        import torch.nn.functional as F

        h, w = x.shape[-2:]
        return F.interpolate(
            x,
            size=(int(round(h * factor)), int(round(w * factor))),
            mode="bilinear",
            align_corners=False,
            antialias=factor < 1,
        )

    return view


@dataclass(frozen=True, kw_only=True)
class TtaGroup:
    description: str
    views: list[View]
    resizes: bool = False  # views change the input size (not for models with a fixed input size)


TTA_GROUPS: dict[str, TtaGroup] = {
    "none": TtaGroup(description="the image as it is", views=[_identity]),
    "hflip": TtaGroup(description="and its mirror image (2 views)", views=[_identity, _hflip]),
    "vflip": TtaGroup(description="and upside down (2 views)", views=[_identity, _vflip]),
    "five-crop": TtaGroup(
        description="centre and four corner crops of 87.5 %, resized back (5 views)",
        views=[_crop(0.5, 0.5), _crop(0, 0), _crop(0, 1), _crop(1, 0), _crop(1, 1)],
    ),
    "multi-scale": TtaGroup(
        description="0.875x, 1x and 1.125x the input size (3 views)",
        views=[_scale(0.875), _identity, _scale(1.125)],
        resizes=True,
    ),
}


def parse_tta(spec: str | None) -> list[str]:
    names = [s.strip() for s in (spec or "none").split(",") if s.strip()] or ["none"]
    unknown = [n for n in names if n not in TTA_GROUPS]
    if unknown:
        raise ArtkitError(f"unknown --tta '{', '.join(unknown)}'", f"choose from: {', '.join(TTA_GROUPS)}")
    return [n for n in names if n != "none"] or ["none"]


def resizes(spec: str | None) -> bool:
    """True if any view of ``spec`` changes the input size."""
    return any(TTA_GROUPS[name].resizes for name in parse_tta(spec))


def build_views(spec: str | None) -> list[View]:
    """Every combination of the named groups' views, applied left to right."""
    groups = [TTA_GROUPS[name].views for name in parse_tta(spec)]
    views = []
    for combo in itertools.product(*groups):

        def view(x, combo=combo):
            for fn in combo:
                x = fn(x)
            return x

        views.append(view)
    return views
