"""artkit's own albumentations transforms. They live at a module's top level, apart from the preset registry
(which stays cheap to import), so that pipelines pickle: DataLoader workers started by spawn or forkserver
(macOS, Windows, Python 3.14's default) receive the dataset pickled."""

from __future__ import annotations

import albumentations as A
import cv2
import numpy as np
import torch
from albumentations.augmentations.crops import functional as fcrops


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


def resize_image(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``img`` (H, W, C uint8) resized to ``size`` (height, width). Where it shrinks along either side, with
    antialiased bilinear weights (PIL's and torchvision's bilinear: a triangle filter as wide as the reduction), by
    torch's uint8 kernel over the image viewed as channels_last; where it only grows, with OpenCV's bilinear, as
    before. OpenCV's INTER_AREA, which the random crops used to shrink, has a fast path only for integer scales:
    at others it took 1.2x (small crops) to 3x (crops of full-size paintings) as long (bench/results/resize.csv)."""
    height, width = size
    if img.shape[0] <= height and img.shape[1] <= width:
        return cv2.resize(img, (width, height), interpolation=cv2.INTER_LINEAR)
    array = img if img.flags.c_contiguous and img.flags.writeable else img.copy()  # whole rows; memory of its own
    # (1, C, H, W) viewed channels_last, no copy. Its batch stride must be the image's size: with another (what
    # [None] gives), torch takes it for contiguous and returns a (C, H, W) image, whose copy back to (H, W, C)
    # cost as much as the resize (pytorch/pytorch#68430; torchvision restrides for the same reason)
    batch = torch.from_numpy(array.reshape(1, *array.shape)).permute(0, 3, 1, 2)
    out = torch.nn.functional.interpolate(batch, size=(height, width), mode="bilinear", antialias=True)
    return out.permute(0, 2, 3, 1)[0].numpy()  # (H, W, C), contiguous


class AntialiasedRandomResizedCrop(A.RandomResizedCrop):
    """albumentations' RandomResizedCrop (the same random crops), each crop resized by :func:`resize_image`. The
    fixed resize of predict and the validation views keeps INTER_AREA: there its output is cached, so it is paid
    once an image, and the antialiased filters scored 0.002-0.010 lower on paintings shrunk by 1.56x."""

    def apply(self, img, crop_coords, **params):
        return resize_image(fcrops.crop(img, *crop_coords), self.size)
