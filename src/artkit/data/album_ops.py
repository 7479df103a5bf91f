"""artkit's own albumentations transforms. They live at a module's top level, apart from the preset registry
(which stays cheap to import), so that pipelines pickle: DataLoader workers started by spawn or forkserver
(macOS, Windows, Python 3.14's default) receive the dataset pickled."""

from __future__ import annotations

import albumentations as A
import numpy as np
import torch


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
