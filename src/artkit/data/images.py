"""Robust image loading: any Pillow mode to RGB, EXIF orientation, reduced-size JPEG decoding."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from artkit.errors import ArtkitError, ImageLoadError
from artkit.reader import open_input

# Decompression-bomb guard: keep Pillow's default limit (Image.MAX_IMAGE_PIXELS) untouched.
_BAD_IMAGE_HINT = "fix or replace the file (`artkit clean` lists every unreadable file)"


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert an image of any Pillow mode to 8-bit RGB.

    Transparent pixels are composited onto white (paintings scanned with alpha are on paper);
    16-bit and float images are rescaled rather than clipped.
    """
    mode = img.mode
    if mode == "RGB":
        return img
    if mode == "P":
        img = img.convert("RGBA") if "transparency" in img.info else img.convert("RGB")
        mode = img.mode
        if mode == "RGB":
            return img
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        hi = 65535.0 if mode.startswith("I;16") else max(float(arr.max()), 1.0)
        if mode in ("I", "F") and arr.max() <= 255 and arr.min() >= 0:
            hi = 255.0
        arr8 = np.clip(arr / hi * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(arr8).convert("RGB")
    return img.convert("RGB")


def reduction_factor(shorter: int, min_size: int | None, jpeg: bool) -> int:
    """By how much :func:`load_image` shrinks an image whose shorter side is ``shorter`` while keeping it at least
    ``min_size``: a JPEG by the DCT scale (8, 4 or 2) that does, other formats by the whole factor."""
    if not min_size or shorter < 2 * min_size:
        return 1
    if jpeg:
        return next(s for s in (8, 4, 2) if shorter >= s * min_size)
    return shorter // min_size


def load_image(path: str | os.PathLike, min_size: int | None = None) -> Image.Image:
    """Load ``path`` as an upright RGB image.

    ``min_size``: when given, a JPEG is decoded at the smallest DCT scale that keeps both
    sides at least this large (Pillow's ``draft``), which is several times faster for big files;
    other formats are reduced by an integer factor right after decoding, before any copy.
    """
    path = os.fspath(path)
    try:
        with open_input(path, "image") as fh, Image.open(fh) as img:
            factor = reduction_factor(min(img.size), min_size, img.format == "JPEG")
            if factor > 1 and img.format == "JPEG":
                # Pillow takes the largest scale that keeps both sides at least the box (floor division): ask for
                # the box of our factor exactly, not a pixel more, or an image of 2x min_size decodes in full
                w, h = img.size
                img.draft("RGB", (w // factor, h // factor))
            img.load()
            if factor > 1 and img.format != "JPEG":
                img = img.reduce(factor)  # other formats decode in full: shrink before any copy is made
            ImageOps.exif_transpose(img, in_place=True)  # a copy (the default) would double peak memory
            return to_rgb(img)
    except ArtkitError as exc:  # not a regular file, too large, missing
        raise ImageLoadError(exc.message, _BAD_IMAGE_HINT, path) from None
    except FileNotFoundError:
        raise ImageLoadError(f"image not found: {path}", _BAD_IMAGE_HINT, path) from None
    except UnidentifiedImageError:
        raise ImageLoadError(f"not an image (or an unsupported format): {path}", _BAD_IMAGE_HINT, path) from None
    except Image.DecompressionBombError as exc:
        raise ImageLoadError(
            f"image too large, refused as a decompression bomb: {path} ({exc})",
            "raise PIL.Image.MAX_IMAGE_PIXELS if you trust the file",
            path,
        ) from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageLoadError(
            f"unreadable image (truncated or corrupt): {path} ({exc})", _BAD_IMAGE_HINT, path
        ) from None


def check_image_header(path: str | os.PathLike) -> str | None:
    """Cheap readability check without decoding pixels: None if fine, else a reason."""
    path = os.fspath(path)
    try:
        with open_input(path, "image") as fh:
            if os.fstat(fh.fileno()).st_size == 0:
                return "empty file"
            with Image.open(fh) as img:
                img.size  # noqa: B018 - parsing the header is the check
        return None
    except ArtkitError as exc:
        return "missing" if "not found" in exc.message else exc.message
    except FileNotFoundError:
        return "missing"
    except UnidentifiedImageError:
        return "not an image"
    except Image.DecompressionBombError:
        return "decompression bomb"
    except (OSError, ValueError, SyntaxError) as exc:
        return f"unreadable ({exc})"
