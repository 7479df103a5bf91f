"""Augmentation presets (albumentations), registered by name like timm's models.

A preset gives a training pipeline and a validation pipeline; prediction always uses the plain
resize-and-normalise pipeline, since test images arrive as they are.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # no network call at import

import albumentations as A  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402
from albumentations.pytorch import ToTensorV2  # noqa: E402

from artkit.errors import ArtkitError  # noqa: E402

Mean = tuple[float, float, float]


class CenterFraction(A.ImageOnlyTransform):
    """Crop the centre ``fraction`` of each side (0.5 keeps a quarter of the area)."""

    def __init__(self, fraction: float = 0.5, p: float = 1.0) -> None:
        super().__init__(p=p)
        self.fraction = fraction

    def apply(self, img: np.ndarray, **params) -> np.ndarray:
        h, w = img.shape[:2]
        ch, cw = max(1, int(round(h * self.fraction))), max(1, int(round(w * self.fraction)))
        top, left = (h - ch) // 2, (w - cw) // 2
        return np.ascontiguousarray(img[top:top + ch, left:left + cw])

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("fraction",)


def _finish(size: int, mean: Mean, std: Mean) -> list:
    return [A.Normalize(mean=mean, std=std, max_pixel_value=255.0), ToTensorV2()]


def _resize(size: int) -> A.BasicTransform:
    return A.Resize(size, size, interpolation=1, area_for_downscale="image")


@dataclass(frozen=True)
class AugPreset:
    """A named augmentation recipe.

    ``decode_factor``: how many times ``img_size`` the shorter side must stay when a JPEG is
    decoded at reduced size, so crops keep their detail.
    """

    name: str
    description: str
    train: Callable[[int], list]
    val: Callable[[int], list]
    decode_factor: float = 1.0


AUG_PRESETS: dict[str, AugPreset] = {}


def register_aug(preset: AugPreset) -> AugPreset:
    AUG_PRESETS[preset.name] = preset
    return preset


def _light(size: int) -> list:
    return [
        _resize(size),
        A.HorizontalFlip(p=0.5),
        A.Affine(scale=(0.9, 1.1), translate_percent=(-0.05, 0.05), rotate=(-10, 10), border_mode=1, p=0.5),
        A.ColorJitter(brightness=0.15, contrast=0.15, saturation=0.1, hue=0.02, p=0.5),
    ]


def _crop(size: int) -> list:
    # Dacon's test images are crops of about a quarter of a painting: train on crops of 15-40 %
    # of the area so the model learns brushwork and palette, not whole compositions. They are also
    # stored at half resolution, so half of the training crops lose up to half their resolution too.
    return [
        A.RandomResizedCrop(size=(size, size), scale=(0.15, 0.4), ratio=(0.6, 1.67), area_for_downscale="image"),
        A.Downscale(scale_range=(0.5, 1.0), interpolation_pair={"downscale": cv2.INTER_AREA, "upscale": cv2.INTER_LINEAR},
                    p=0.5),
        A.HorizontalFlip(p=0.5),
        A.ColorJitter(brightness=0.1, contrast=0.1, saturation=0.1, hue=0.0, p=0.3),
    ]


register_aug(AugPreset("none", "resize and normalise only", lambda s: [_resize(s)], lambda s: [_resize(s)]))
register_aug(AugPreset("light", "flips, small shift/scale/rotate, colour jitter", _light, lambda s: [_resize(s)]))
register_aug(AugPreset(
    "crop", "random crops of about a quarter of the image, half of them at reduced resolution (like Dacon's "
    "test crops), flips, colour; "
    "validates on the centre quarter", _crop, lambda s: [CenterFraction(0.5), _resize(s)], decode_factor=2.0))


def get_preset(name: str) -> AugPreset:
    if name not in AUG_PRESETS:
        raise ArtkitError(f"unknown augmentation preset '{name}'", f"choose one of: {', '.join(AUG_PRESETS)}")
    return AUG_PRESETS[name]


def create_transform(preset: str, img_size: int, mean: Mean, std: Mean, stage: str) -> A.Compose:
    """Build the pipeline for ``stage``: 'train', 'val' (the preset's validation view) or 'predict'."""
    spec = get_preset(preset)
    if stage == "train":
        ops = spec.train(img_size)
    elif stage == "val":
        ops = spec.val(img_size)
    elif stage == "predict":
        ops = [_resize(img_size)]
    else:
        raise ValueError(f"unknown stage {stage!r}")
    return A.Compose(ops + _finish(img_size, mean, std))
