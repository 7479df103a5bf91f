"""Augmentation presets (albumentations), registered by name like timm's models: a new preset is one
:func:`register_aug` entry.

A preset gives a training pipeline and a validation pipeline; prediction always uses the plain
resize pipeline, since test images arrive as they are. Every pipeline ends in a uint8 (H, W, C) tensor:
normalisation happens on the whole batch on the device (:class:`artkit.engine.device.DeviceBatches`, timm's
prefetcher idea), which moves a quarter of the bytes between processes and spares each loader process a float
pass over every image. albumentations is imported only when a pipeline is built, so the registry (names and
descriptions) is cheap to read.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from artkit.errors import ArtkitError

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # no network call at import

STAGES = ("train", "val", "predict")


@dataclass(frozen=True, kw_only=True)
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


def aug_names() -> list[str]:
    return list(AUG_PRESETS)


def center_fraction(fraction: float):
    from artkit.data.album_ops import CenterFraction

    return CenterFraction(fraction)


def _resize(size: int):
    import albumentations as A

    return A.Resize(size, size, interpolation=1, area_for_downscale="image")


def _random_resized_crop(size: int, scale: tuple[float, float], **kwargs):
    from artkit.data.album_ops import AntialiasedRandomResizedCrop

    return AntialiasedRandomResizedCrop(size=(size, size), scale=scale, **kwargs)


def _plain(size: int) -> list:
    return [_resize(size)]


def _light(size: int) -> list:
    import albumentations as A

    return [
        _resize(size),
        A.HorizontalFlip(p=0.5),
        A.Affine(scale=(0.9, 1.1), translate_percent=(-0.05, 0.05), rotate=(-10, 10), border_mode=1, p=0.5),
        A.ColorJitter(brightness=0.15, contrast=0.15, saturation=0.1, hue=0.02, p=0.5),
    ]


def _crop(size: int) -> list:
    import albumentations as A
    import cv2

    # Dacon's test images are crops of about a quarter of a painting: train on crops of 15-40 %
    # of the area so the model learns brushwork and palette, not whole compositions. They are also
    # stored at half resolution, so half of the training crops lose up to half their resolution too.
    # The reduction is bilinear, not INTER_AREA: the same average at half scale, 0.44 grey levels apart on average
    # between, and 3x as fast (OpenCV's area path at a non-integer scale took half the augmentation's time).
    return [
        _random_resized_crop(size, scale=(0.15, 0.4), ratio=(0.6, 1.67)),
        A.Downscale(
            scale_range=(0.5, 1.0),
            interpolation_pair={"downscale": cv2.INTER_LINEAR, "upscale": cv2.INTER_LINEAR},
            p=0.5,
        ),
        A.HorizontalFlip(p=0.5),
        A.ColorJitter(brightness=0.1, contrast=0.1, saturation=0.1, hue=0.0, p=0.3),
    ]


def _center_quarter(size: int) -> list:
    return [center_fraction(0.5), _resize(size)]


def _strong(size: int) -> list:
    import albumentations as A

    # the "strong augmentation" of ImageNet-style recipes: wide-scale random crops, flips, rotation,
    # colour, blur and erased patches
    return [
        _random_resized_crop(size, scale=(0.08, 1.0)),
        A.HorizontalFlip(p=0.5),
        A.VerticalFlip(p=0.2),
        A.Affine(rotate=(-20, 20), border_mode=1, p=0.5),
        A.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3, hue=0.05, p=0.8),
        A.ToGray(p=0.1),
        A.GaussianBlur(blur_limit=(3, 5), p=0.1),
        A.CoarseDropout(num_holes_range=(1, 4), hole_height_range=(0.05, 0.2), hole_width_range=(0.05, 0.2), p=0.5),
    ]


register_aug(AugPreset(name="none", description="resize only", train=_plain, val=_plain))
register_aug(
    AugPreset(name="light", description="flips, small shift/scale/rotate, colour jitter", train=_light, val=_plain)
)
register_aug(
    AugPreset(
        name="crop",
        description="random crops of about a quarter of the image, half of them at reduced resolution "
        "(like Dacon's test crops), flips, colour; validates on the centre quarter",
        train=_crop,
        val=_center_quarter,
        decode_factor=2.0,
    )
)
register_aug(
    AugPreset(
        name="strong",
        description="wide-scale random crops, flips, rotation, strong colour, blur, erased patches",
        train=_strong,
        val=_plain,
    )
)


def get_preset(name: str) -> AugPreset:
    if name not in AUG_PRESETS:
        raise ArtkitError(f"unknown augmentation preset '{name}'", f"choose one of: {', '.join(AUG_PRESETS)}")
    return AUG_PRESETS[name]


def decode_size(preset: str, img_size: int, stage: str) -> int:
    """The shorter side images are decoded to (at least) for ``stage``: the preset's ``decode_factor`` times
    ``img_size`` for training and validation, ``img_size`` for predict's plain resize."""
    return int(img_size * (get_preset(preset).decode_factor if stage != "predict" else 1.0))


def _is_fixed(op) -> bool:
    """Whether ``op`` always applies and draws no random numbers: its output depends on its input alone."""
    import albumentations as A

    from artkit.data.album_ops import CenterFraction

    return isinstance(op, (A.Resize, CenterFraction)) and op.p >= 1


def split_fixed(transform) -> tuple[Any, Any]:
    """``transform`` (a pipeline of :func:`create_transform`) as two: its first operations that are fixed (a resize,
    a centre crop: the same output every epoch, which the decode cache keeps), and the rest, which draws the same
    random numbers as the whole does, so it gives the whole's output from the fixed part's. None for a fixed part
    with no operation, and for a rest that is only the final tensor conversion (the whole pipeline is fixed)."""
    import albumentations as A

    from artkit.data.album_ops import HWCTensor

    ops = list(transform.transforms)
    count = next((i for i, op in enumerate(ops) if not _is_fixed(op)), len(ops))
    rest = ops[count:]
    fixed = A.Compose(ops[:count]) if count else None
    return fixed, None if all(isinstance(op, HWCTensor) for op in rest) else A.Compose(rest)


def view_key(fixed) -> str:
    """A name for the output of ``fixed``, a fixed part of a pipeline (:func:`split_fixed`); the decode cache
    stores it under this name. It is a digest of the operations and their parameters, with the versions of the
    libraries that compute them: a changed pipeline is never read from an old entry, and the same operations share
    one (the validation view that is predict's resize, and the resize that starts the light training pipeline)."""
    import hashlib
    import json

    import albumentations as A
    import cv2

    spec = json.dumps(A.to_dict(fixed), sort_keys=True, default=str)  # carries albumentations' version
    return f"view|cv2 {cv2.__version__}|" + hashlib.blake2b(spec.encode(), digest_size=16).hexdigest()


def create_transform(preset: str, img_size: int, stage: str):
    """Build the pipeline for ``stage``: 'train', 'val' (the preset's validation view) or 'predict'. It gives
    uint8 (H, W, C) tensors, not normalised; batches of them go to the model through
    :func:`artkit.engine.device.as_nchw`."""
    import albumentations as A

    from artkit.data.album_ops import HWCTensor

    spec = get_preset(preset)
    ops = {"train": spec.train, "val": spec.val, "predict": _plain}[stage](img_size)
    return A.Compose(ops + [HWCTensor()])
