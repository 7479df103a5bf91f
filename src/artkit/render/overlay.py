"""Pictures of where a model looks: a heat map over the image, beside the image, with captions."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

from artkit.render.sheet import _font


def heat_overlay(image: Image.Image, cam: np.ndarray, alpha: float = 0.45) -> Image.Image:
    """``image`` with ``cam`` (values in [0, 1], any size) drawn over it in the 'jet' colours."""
    from matplotlib import colormaps

    heat = Image.fromarray(np.uint8(np.clip(cam, 0, 1) * 255)).resize(image.size, Image.BILINEAR)
    weight = np.asarray(heat, np.float32)[..., None] / 255.0
    coloured = colormaps["jet"](weight[..., 0])[..., :3]
    original = np.asarray(image.convert("RGB"), np.float32) / 255.0
    blended = original * (1 - alpha * weight) + coloured * alpha * weight  # cold areas keep the image as it is
    return Image.fromarray(np.uint8(np.clip(blended, 0, 1) * 255))


def panel(image: Image.Image, cam: np.ndarray, lines: Sequence[str], side: int = 224) -> Image.Image:
    """Original | overlay, ``side`` px each, with ``lines`` of text underneath."""
    shown = image.convert("RGB").resize((side, side), Image.BILINEAR)
    font = _font(13)
    text_h = 8 + 18 * len(lines)
    out = Image.new("RGB", (2 * side + 12, side + 8 + text_h), (255, 255, 255))
    out.paste(shown, (4, 4))
    out.paste(heat_overlay(shown, cam), (side + 8, 4))
    draw = ImageDraw.Draw(out)
    for k, line in enumerate(lines):
        draw.text((6, side + 10 + 18 * k), line, fill=(20, 20, 20), font=font)
    return out
