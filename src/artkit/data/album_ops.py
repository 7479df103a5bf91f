"""artkit's own albumentations transforms. They live at a module's top level, apart from the preset registry
(which stays cheap to import), so that pipelines pickle: DataLoader workers started by spawn or forkserver
(macOS, Windows, Python 3.14's default) receive the dataset pickled."""

from __future__ import annotations

import albumentations as A
import cv2
import numpy as np
import torch
from albumentations.augmentations.crops import functional as fcrops
from albumentations.augmentations.geometric import functional as fgeometric


class CenterFraction(A.ImageOnlyTransform):
    """Crop the centre ``fraction`` of each side (0.5 keeps a quarter of the area)."""

    def __init__(self, fraction: float = 0.5, p: float = 1.0) -> None:
        super().__init__(p=p)
        self.fraction = fraction

    def apply(self, img, **params):
        h, w = img.shape[:2]
        ch, cw = max(1, int(round(h * self.fraction))), max(1, int(round(w * self.fraction)))
        top, left = (h - ch) // 2, (w - cw) // 2
        return np.ascontiguousarray(img[top : top + ch, left : left + cw])

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("fraction",)


class HWCTensor(A.ImageOnlyTransform):
    """(H, W, C) uint8 to a contiguous uint8 tensor of its own in the same layout, not transposed: a batch of them,
    viewed as (B, C, H, W) (:func:`artkit.engine.device.as_nchw`), is already channels_last, the memory format the
    models run in, so neither the loader nor the step copies an image to change its layout (the transposed copy
    took 40-85 us an image, a fifth of the crop preset's augmentation). A copy only of a read-only image, such as
    a memory map of the decode cache, which torch must not share."""

    def __init__(self, p: float = 1.0) -> None:
        super().__init__(p=p)

    def apply(self, img, **params):
        array = np.ascontiguousarray(img)
        return torch.from_numpy(array if array.flags.writeable else array.copy())

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ()


class ReducedResolutionCrop(A.RandomResizedCrop):
    """A random resized crop that, with probability ``reduce_p``, first loses resolution, as a test image stored at
    reduced resolution has: the crop is resized to ``reduce`` (drawn from ``reduce_range``) times the output size
    (INTER_AREA where that shrinks it), then to the output size. A crop already at or below that resolution is
    resized once. It replaces RandomResizedCrop followed by Downscale, which resized every crop to the output
    size, then down and up again: one or two resizes fewer, and INTER_AREA at a non-integer scale costs 250-420 us
    an image at 224 px on these CPUs."""

    def __init__(
        self,
        size: tuple[int, int],
        scale: tuple[float, float],
        ratio: tuple[float, float],
        reduce_range: tuple[float, float] = (0.5, 1.0),
        reduce_p: float = 0.5,
        p: float = 1.0,
    ) -> None:
        super().__init__(size=size, scale=scale, ratio=ratio, area_for_downscale="image", p=p)
        self.reduce_range, self.reduce_p = tuple(reduce_range), reduce_p

    def get_params(self) -> dict:
        reduce = self.py_random.uniform(*self.reduce_range) if self.py_random.random() < self.reduce_p else 1.0
        return {**super().get_params(), "reduce": reduce}

    def apply(self, img, crop_coords, reduce: float = 1.0, **params):
        crop = fcrops.crop(img, *crop_coords)
        if reduce < 1:
            low = (max(1, round(self.size[0] * reduce)), max(1, round(self.size[1] * reduce)))
            if crop.shape[0] > low[0] or crop.shape[1] > low[1]:
                crop = cv2.resize(crop, (low[1], low[0]), interpolation=cv2.INTER_AREA)
        return fgeometric.resize(crop, self.size, self._get_interpolation_for_resize(crop.shape[:2], "image"))

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("size", "scale", "ratio", "reduce_range", "reduce_p")
